"""A tiny module the example pack restores; importable right after `builder.restore(...)`."""

GREETING = "hello from a restored prebake pack"
