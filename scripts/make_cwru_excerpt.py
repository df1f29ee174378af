"""Build the CWRU excerpt bundled in edgemon/data/cwru from the full recordings.

The excerpt lets the demo and the tests run without the full data set. It
keeps the original file names and MATLAB variable names, so
``load_dataset("cwru", edgemon.data.CWRU_EXCERPT, ...)`` reads it with the
same loader as the full set:

- the 0 hp normal baseline, record 97, whole (243,938 samples at 48 kHz), so
  that loading it at 12 kHz goes through the resampling path;
- the 0.007 in inner-race, ball and outer-race (6:00) faults at 0 hp and 1 hp,
  so that a model trained on one load can be replayed on the other. Each
  keeps its first 5 s (60,000 samples at 12 kHz).

Only the DE and FE channels and the RPM value are kept. Values are stored as
float64, equal to the source values, in compressed MATLAB 5 elements (zlib).
The script checks the source sha256s, checks that every excerpt array equals
its source slice, writes edgemon/data/cwru/README.md with the sha256s of
source and excerpt, and fails if the excerpt exceeds 4,000,000 bytes.

Usage::

    python scripts/make_cwru_excerpt.py [--source ../shared/data/cwru] [--output edgemon/data/cwru]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import re
import sys
from pathlib import Path

import numpy as np
import scipy.io

REPOSITORY = Path(__file__).resolve().parents[1]
MAX_TOTAL_BYTES = 4_000_000
FAULT_SECONDS = 5
FAULT_SAMPLE_RATE = 12_000

# name: (source sha256, samples kept per channel, or None for the whole record)
SELECTION = {
    "normal_0_97.mat": ("16bf48babcf1c7ac224bc1a81cd9eafdb27e42d5cf559761907e067e8eeadf3c", None),
    "12k_Drive_End_IR007_0_105.mat": (
        "f80b0ea04fd06b372a0eaec7c056543ea37e4bb4727a5b173d2a5bacd2aa9cab",
        60_000,
    ),
    "12k_Drive_End_IR007_1_106.mat": (
        "e5cec7cdd138e6cd1deb9ed8634e5aaa9bc1bd7094ddc075bff606580eb6e883",
        60_000,
    ),
    "12k_Drive_End_B007_0_118.mat": (
        "b00628f8dd8d1d930af77fa465d1e5cdb385fe259489053f91f3680bda7f640e",
        60_000,
    ),
    "12k_Drive_End_B007_1_119.mat": (
        "bc72d9df7668219e004a0f711232b23ec0aed393eb9bd8f9f5483426f6b51330",
        60_000,
    ),
    "12k_Drive_End_OR007@6_0_130.mat": (
        "35a095307d0971477049b343a1b5981dde465a58fb7f233ad89b035068c1717d",
        60_000,
    ),
    "12k_Drive_End_OR007@6_1_131.mat": (
        "7883f7b83beadc54b2f301767f9145ce07055707182fb0278fdf0a6bb53ce3cb",
        60_000,
    ),
}
KEPT_VARIABLE = re.compile(r"X\d+_(DE|FE)_time|X\d+RPM")
HEADER_BYTES = 116  # text part of the 128-byte MAT 5 header


def make_excerpt(source_path: Path, data: bytes, n_samples: int | None) -> bytes:
    """Return the bytes of one excerpt file, after checking it against its source."""
    source = scipy.io.loadmat(io.BytesIO(data))
    kept = {
        name: value if n_samples is None or not name.endswith("_time") else value[:n_samples]
        for name, value in source.items()
        if KEPT_VARIABLE.fullmatch(name)
    }
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, kept, do_compression=True, oned_as="column")
    excerpt = bytearray(buffer.getvalue())

    # savemat writes the creation time into the header; a fixed text makes
    # the output the same on every run.
    header = f"MATLAB 5.0 MAT-file, excerpt of CWRU {source_path.name} by edgemon"
    excerpt[:HEADER_BYTES] = header.encode("ascii").ljust(HEADER_BYTES)

    written = scipy.io.loadmat(io.BytesIO(bytes(excerpt)))
    for name, value in kept.items():
        if written[name].dtype != value.dtype or not np.array_equal(written[name], value):
            raise SystemExit(f"{source_path.name}: {name} does not read back unchanged")
    return bytes(excerpt)


def describe(name: str, data: bytes) -> tuple[str, str]:
    """Return (channels kept, samples kept) for the README table."""
    variables = scipy.io.loadmat(io.BytesIO(data))
    signals = sorted(key for key in variables if key.endswith("_time"))
    channels = ",".join(key.split("_")[1] for key in signals)
    return channels, f"{variables[signals[0]].shape[0]:,}"


def readme(rows: list[tuple[str, str, str, str, str, int]], total: int) -> str:
    table = "\n".join(
        f"| {name} | {channels} | {samples} | {size:,} | `{source_sha}` | `{excerpt_sha}` |"
        for name, channels, samples, source_sha, excerpt_sha, size in rows
    )
    return f"""# CWRU bearing data excerpt

Data: **Case Western Reserve University Bearing Data Center**, Case School of
Engineering (2 hp Reliance motor, SKF 6205-2RS JEM drive-end bearing with
single-point EDM faults). CWRU publishes the recordings for free public
download without an explicit licence; credit the Bearing Data Center when you
use them. The file names come from the GitHub repository
`yyxyz/CaseWesternReserveUniversityData`, which redistributes the CWRU
records unchanged.

This folder is a small excerpt, made by `scripts/make_cwru_excerpt.py`, so
that the demo and the tests run without the full data set. It is read with
the same loader: `load_dataset("cwru", edgemon.data.CWRU_EXCERPT, ...)`.

## What was kept and how
- **Records:** the 0 hp normal baseline (record 97), and the 0.007 in
  inner-race, ball and outer-race (6:00) drive-end faults at 0 hp (records
  105, 118, 130) and 1 hp (106, 119, 131). A model can be trained on one load
  and replayed on the other. The normal baseline exists only at 0 hp, so a
  held-out test splits it in time.
- **Why 0.007 in:** at that size the four conditions differ clearly in
  drive-end RMS. The mean RMS of 1024-sample windows over the first 4 s at
  12 kHz and 0 hp is 0.072 g (normal), 0.139 g (ball), 0.291 g (inner race)
  and 0.672 g (outer race). At 0.014 in the outer-race fault has an RMS of
  0.101 g and a kurtosis near that of the normal baseline.
- **Length:** the normal baseline is kept whole: 243,938 samples at **48 kHz**
  (5.08 s), as in the source. Loading it with `sample_rate=12000` exercises
  the resampling path. Each fault file keeps its first {FAULT_SECONDS} s:
  {FAULT_SECONDS * FAULT_SAMPLE_RATE:,} samples at 12 kHz.
- **Channels:** `DE` and `FE`, plus the in-file speed `X<record>RPM`. The base
  accelerometer `BA` was dropped to fit the size limit, and the normal
  baseline never had it.
- **Values:** float64 and equal to the source values; the script checks every
  array against its source slice. The files use compressed MATLAB 5 data
  elements (zlib), which `scipy.io.loadmat` and MATLAB 7 or later read. The
  header text names the source file in place of the creation time, so the
  script writes the same bytes on every run.
- **Names:** file names and variable names (`X105_DE_time`, `X105RPM`, ...)
  are unchanged.

Total: {total:,} bytes in {len(rows)} files.

## Files
| file | channels | samples per channel | bytes | source sha256 | excerpt sha256 |
|---|---|---|---|---|---|
{table}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--source",
        type=Path,
        default=REPOSITORY.parent / "shared" / "data" / "cwru",
        help="folder of the full CWRU recordings (default: ../shared/data/cwru)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=REPOSITORY / "edgemon" / "data" / "cwru",
        help="folder to write the excerpt to (default: edgemon/data/cwru)",
    )
    args = parser.parse_args(argv)

    excerpts = {}
    rows = []
    for name, (expected_sha, n_samples) in SELECTION.items():
        source_path = args.source / name
        data = source_path.read_bytes()
        source_sha = hashlib.sha256(data).hexdigest()
        if source_sha != expected_sha:
            raise SystemExit(
                f"{source_path}: sha256 {source_sha} does not match the expected {expected_sha}"
            )
        excerpt = make_excerpt(source_path, data, n_samples)
        excerpts[name] = excerpt
        channels, samples = describe(name, excerpt)
        excerpt_sha = hashlib.sha256(excerpt).hexdigest()
        rows.append((name, channels, samples, source_sha, excerpt_sha, len(excerpt)))

    total = sum(len(excerpt) for excerpt in excerpts.values())
    if total > MAX_TOTAL_BYTES:
        raise SystemExit(f"the excerpt is {total:,} bytes, over the {MAX_TOTAL_BYTES:,} limit")

    args.output.mkdir(parents=True, exist_ok=True)
    for name, excerpt in excerpts.items():
        (args.output / name).write_bytes(excerpt)
    (args.output / "README.md").write_text(readme(rows, total), encoding="utf-8")
    print(f"wrote {len(excerpts)} files, {total:,} bytes, to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
