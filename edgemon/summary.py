"""Text summaries of replays: states per file, and accuracy where the file name gives it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from edgemon.model import Model
from edgemon.replay import FileResult

__all__ = ["format_replay_summary", "print_replay_summary"]


def format_replay_summary(results: Sequence[FileResult], model: Model) -> list[str]:
    """Return one line per replayed file and a total line.

    A file whose name states its condition (CWRU or MFPT naming) also gets
    the share of its windows whose state matches that condition.
    """
    from edgemon.training.datasets import label_from_name

    lines = []
    total_windows = total_correct = total_labelled = 0
    for result in results:
        states = ", ".join(
            f"{state} {count}"
            for state, count in sorted(result.states.items(), key=lambda item: -item[1])
        )
        speed = result.duration / result.elapsed if result.elapsed > 0 else float("inf")
        line = (
            f"{result.path.name}: {result.windows} windows in {result.elapsed:.2f} s "
            f"({speed:.0f}x real time); states: {states or 'none'}"
        )
        label = label_from_name(result.path)
        if label is not None and label in model.metadata.states and result.windows:
            correct = result.states.get(label, 0)
            line += f"; true condition {label}: {correct / result.windows:.1%} of windows"
            total_correct += correct
            total_labelled += result.windows
        if result.windows_flagged:
            line += f"; {result.windows_flagged} flagged"
        if result.samples_dropped:
            line += f"; {result.samples_dropped} samples DROPPED"
        if not result.completed:
            line += " (interrupted)"
        lines.append(line)
        total_windows += result.windows
    if total_labelled:
        lines.append(
            f"total: {total_windows} windows; {total_correct / total_labelled:.1%} of the "
            f"{total_labelled} windows of known condition got their true state"
        )
    else:
        lines.append(f"total: {total_windows} windows")
    return lines


def print_replay_summary(results: Sequence[FileResult], model: Model, out: TextIO) -> None:
    """Write :func:`format_replay_summary` to ``out``."""
    for line in format_replay_summary(results, model):
        out.write(line + "\n")
