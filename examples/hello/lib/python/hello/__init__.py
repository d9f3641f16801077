"""A tiny module the example pack restores; importable right after `prebake.restore(...)`."""

GREETING = "hello from a restored prebake pack"
