"""A Config parser: `key = value` lines into a dict (numbers as ints)."""


def parse_kv(text):
    out = {}
    for line in text.splitlines():
        if "=" in line:
            key, value = (part.strip() for part in line.split("=", 1))
            out[key] = int(value) if value.isdigit() else value
    return out
