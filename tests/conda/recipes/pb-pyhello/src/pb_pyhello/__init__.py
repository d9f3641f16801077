"""A tiny module for the conda test fixture."""


def hello() -> str:
    return "hello from pb_pyhello"


def main() -> None:
    print(hello())
