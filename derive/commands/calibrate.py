"""derive calibrate: fit a hardware profile's constants to measured times."""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(sub) -> None:
    p = sub.add_parser(
        "calibrate", help="fit a hardware profile to measured decode/prefill times or training runs",
        description="Fit the constants of the time model (achievable bandwidth and FLOP/s, a fixed cost per layer) "
                    "to measured times, print each record's residual, and write a profile that --hardware accepts "
                    "everywhere. A record: {\"quantity\": \"decode.step_time\" | \"prefill.time\" | "
                    "\"training.step_time\" | \"training.mfu\" | \"training.tflops_per_device\" | …, "
                    "\"hardware\": PRESET (optional: a record from another preset of the same generation), \"model\": "
                    "PRESET | \"hf_config\": PATH, \"set\": {\"b\": 8, \"s\": 1025}, \"options\": {…}, "
                    "\"measured\": \"6.6ms\"} (a number in the quantity's unit, or a string with units); a CSV "
                    "with the same columns works too.",
        epilog="examples:\n"
               "  derive calibrate --hardware h200 --measurements h200-runs.json --out h200-profile.json\n"
               "  derive show decode.step_time --model llama-2-13b --hardware h200-profile.json --set b=8 "
               "--set s=2048",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--hardware", required=True, metavar="PRESET", help="the preset the measurements ran on")
    p.add_argument("--measurements", required=True, metavar="FILE", help="JSON list (or CSV) of records")
    p.add_argument("--out", "-o", metavar="PROFILE.json", help="where to write the profile (default: print only)")
    p.add_argument("--format", "-f", default="text", choices=["text", "json"], help="what to print")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from derive import calibrate as cal
    from derive.errors import DeriveError

    records = cal.read_records(args.measurements)
    fits = cal.calibrate(args.hardware, records)
    prof = cal.profile(args.hardware, fits, args.measurements)
    if args.out:
        try:
            with open(args.out, "w", encoding="utf-8") as f:
                json.dump(prof, f, indent=2, ensure_ascii=False)
                f.write("\n")
        except OSError as exc:
            raise DeriveError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    if args.format == "json":
        sys.stdout.write(json.dumps(prof, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(cal.report(fits))
        if args.out:
            sys.stdout.write(f"profile written to {args.out} (use --hardware {args.out})\n")
    return 0
