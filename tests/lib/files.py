"""Readers for the files the suites check against what happac ships."""


def env_file(text):
    """The variables of a systemd EnvironmentFile= / shell env file: KEY=value
    lines, "double quotes" stripped, # and ; comments and blank lines skipped."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        k, v = line.split("=", 1)
        v = v.strip()
        if len(v) >= 2 and v[0] == v[-1] == '"':
            v = v[1:-1]
        out[k.strip()] = v
    return out
