#!/usr/bin/env python3
"""SMILExtract, openSMILE's command line, on the SMILE engine (libSMILEapi) that the opensmile
wheel ships. The wheel has the engine and the configs but not the program; this front end passes
the command line to the engine the way SMILExtract does.

    SMILExtract -C CONFIG -I input.wav -O features.csv [-l LOGLEVEL] [-OPTION VALUE ...]

CONFIG is a path, or a path below the wheel's config folder (e.g. is09-13/IS10_paraling_compat.conf,
egemaps/v02/eGeMAPSv02.conf). -O writes the functionals as CSV (the config's func_csv_output);
any other -OPTION VALUE is one of the config's own \\cm[...] options. The wheel's configs read their
input and write their output through include options (source, sink, ...), which default here to
the wheel's own wave-file input and CSV output includes.
"""

import os
import re
import sys

_INCLUDE = re.compile(r"\\\{([^\\}]+)\}")


def _config_text(path: str, seen: set[str]) -> str:
    """The config and every file it includes by a plain path, for finding which options it reads."""
    if path in seen or not os.path.isfile(path):
        return ""
    seen.add(path)
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    folder = os.path.dirname(path)
    return text + "".join(_config_text(os.path.join(folder, inc), seen) for inc in _INCLUDE.findall(text))


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    import opensmile
    from opensmile.core.lib import OpenSMILE, OpenSmileException

    config_root = os.path.join(os.path.dirname(opensmile.core.__file__), "config")
    shared = os.path.join(config_root, "shared")
    config, level, options = None, 2, {}
    args = list(argv)
    while args:
        flag = args.pop(0)
        if not flag.startswith("-") or not args:
            print(f"SMILExtract: expected -OPTION VALUE pairs, got {flag!r}; see SMILExtract -h", file=sys.stderr)
            return 2
        value = args.pop(0)
        if flag == "-C":
            config = value
        elif flag == "-l":
            level = int(value)
        elif flag == "-O":
            options["func_csv_output"] = value
        else:
            options[flag[1:]] = value
    if config is None:
        print("SMILExtract: -C CONFIG is required; see SMILExtract -h", file=sys.stderr)
        return 2
    if not os.path.isfile(config) and os.path.isfile(os.path.join(config_root, config)):
        config = os.path.join(config_root, config)
    if not os.path.isfile(config):
        print(f"SMILExtract: config {config!r} not found (nor below {config_root})", file=sys.stderr)
        return 2
    text = _config_text(config, set())
    defaults = {
        "source": os.path.join(shared, "standard_wave_input.conf.inc"),
        "sink": os.path.join(shared, "standard_data_output_no_lld_de.conf.inc"),
        "bufferModeRbConf": os.path.join(shared, "BufferModeRb.conf.inc"),
        "frameModeFunctionalsConf": os.path.join(shared, "FrameModeFunctionals.conf.inc"),
    }
    for name, value in defaults.items():
        if f"\\cm[{name}" in text:
            options.setdefault(name, value)
    smile = OpenSMILE()
    try:
        smile.initialize(config, options, loglevel=level, console_output=True)
        smile.run()
    except OpenSmileException as e:
        print(f"SMILExtract: {e}", file=sys.stderr)
        return 1
    finally:
        smile.free()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
