#!/usr/bin/env python3
"""smile-features: openSMILE feature sets for audio files, one CSV.

    smile-features AUDIO... [--set eGeMAPSv02] [--level functionals] -o features.csv

Sets (the opensmile package's FeatureSet names): eGeMAPSv02 (88 functionals), IS10 (1582,
the INTERSPEECH 2010 paralinguistic challenge set), ComParE_2016 (6373), emobase (988), IS09,
IS11, IS12, IS13, GeMAPSv01b, eGeMAPSv01b, ... A path to an openSMILE .conf file works too.
Levels: functionals (one row per file), lld (one row per frame), lld_de (deltas).
The CSV's first columns are file, start, end (seconds), then one column per feature.
"""

from __future__ import annotations

import argparse
import sys

LEVELS = {"functionals": "Functionals", "lld": "LowLevelDescriptors", "lld_de": "LowLevelDescriptors_Deltas"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="smile-features", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    parser.add_argument("audio", nargs="+", help="audio files (wav, flac, ogg, ...)")
    parser.add_argument("--set", default="eGeMAPSv02", help="feature set name or a .conf path (default eGeMAPSv02)")
    parser.add_argument("--level", choices=sorted(LEVELS), default="functionals")
    parser.add_argument("-o", "--output", required=True, help="the CSV to write ('-' for standard output)")
    args = parser.parse_args(argv)

    import opensmile

    if args.set.endswith(".conf"):
        feature_set = args.set
    else:
        try:
            feature_set = opensmile.FeatureSet[args.set]
        except KeyError:
            names = ", ".join(opensmile.FeatureSet.__members__)
            print(f"smile-features: unknown set {args.set!r} (known: {names}, or a .conf path)", file=sys.stderr)
            return 2
    level = opensmile.FeatureLevel[LEVELS[args.level]]
    try:
        smile = opensmile.Smile(feature_set=feature_set, feature_level=level)
    except ValueError as e:  # e.g. deltas asked of a set that has none
        print(f"smile-features: {e}", file=sys.stderr)
        return 2
    frame = smile.process_files(args.audio)
    frame = frame.reset_index()
    frame["start"] = frame["start"].dt.total_seconds()
    frame["end"] = frame["end"].dt.total_seconds()
    frame.to_csv(sys.stdout if args.output == "-" else args.output, index=False)
    if args.output != "-":
        print(f"{args.output}: {len(frame)} row(s) x {len(frame.columns) - 3} {args.set} features", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
