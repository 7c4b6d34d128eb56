"""A timeline: class probabilities per window, merged into segments of one class, written as
JSON lines or CSV, and drawn (matplotlib).

Segments: consecutive windows whose top class is the same and whose top probability reaches the
threshold make one segment, if there are at least `min_windows` of them (a window that straddles
two actions is often taken for a third: alone, it makes no segment; the input's only run of
windows is always one). With overlapping windows each moment belongs to the window whose
centre is nearest, so a segment runs from the midpoint between its first window's centre and
the previous window's (the first window: its start) to the same midpoint after its last window
(the last window: its end); its score is the class's mean probability over its windows.
No TensorFlow here.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from typing import Iterable, Iterator, Sequence


@dataclasses.dataclass(frozen=True)
class Scored:
    """One classified window."""

    start: float
    end: float
    probabilities: tuple[float, ...]

    @property
    def centre(self) -> float:
        return (self.start + self.end) / 2

    @property
    def top(self) -> int:
        return max(range(len(self.probabilities)), key=lambda i: self.probabilities[i])


@dataclasses.dataclass(frozen=True)
class Segment:
    start: float
    end: float
    class_id: int
    class_name: str
    score: float

    def describe(self) -> str:
        """'00:12.0-00:18.5 Run 0.91'."""
        return f"{clock(self.start)}-{clock(self.end)} {self.class_name} {self.score:.2f}"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def clock(seconds: float) -> str:
    """MM:SS.s, with hours when there are any (1:02:03.4)."""
    tenths = round(seconds * 10)
    hours, rest = divmod(tenths, 36000)
    minutes, rest = divmod(rest, 600)
    text = f"{minutes:02d}:{rest // 10:02d}.{rest % 10}"
    return f"{hours}:{text}" if hours else text


class Segmenter:
    """Windows in, segments out as soon as they close: `add` returns the segment a window ends."""

    def __init__(self, label_names: Sequence[str], threshold: float, min_windows: int = 1):
        self.label_names, self.threshold, self.min_windows = tuple(label_names), threshold, min_windows
        self._run: list[Scored] = []  # the windows of the open segment
        self._start = 0.0  # where the open segment starts
        self._previous: Scored | None = None
        self._seen = 0  # windows so far

    def add(self, window: Scored) -> Segment | None:
        boundary = window.start if self._previous is None else (self._previous.centre + window.centre) / 2
        self._seen += 1
        closed = None
        same = self._run and window.top == self._run[0].top
        if self._run and (not same or window.probabilities[window.top] < self.threshold):
            closed = self._close(boundary)
        if window.probabilities[window.top] >= self.threshold:
            if not self._run:
                self._start = boundary
            self._run.append(window)
        self._previous = window
        return closed

    def finish(self) -> Segment | None:
        """The segment still open at the end of the input (it ends with the last window)."""
        return self._close(self._previous.end) if self._run else None

    def _close(self, end: float) -> Segment | None:
        run, self._run = self._run, []
        if len(run) < self.min_windows and len(run) < self._seen:
            return None
        top = run[0].top
        score = sum(w.probabilities[top] for w in run) / len(run)
        return Segment(round(self._start, 3), round(end, 3), top, self.label_names[top], round(score, 4))


def segments(windows: Iterable[Scored], label_names: Sequence[str], threshold: float, min_windows: int = 1) -> list[Segment]:
    """Every segment of a finished timeline."""
    segmenter = Segmenter(label_names, threshold, min_windows)
    out = [s for s in (segmenter.add(w) for w in windows) if s is not None]
    last = segmenter.finish()
    return out + [last] if last else out


def top_k(probabilities: Sequence[float], k: int) -> list[int]:
    """The k most probable class ids, most probable first (ties: the lower id first)."""
    return sorted(range(len(probabilities)), key=lambda i: -float(probabilities[i]))[:k]


class RowWriter:
    """Per-window rows to a text stream: JSON lines, or CSV with a header (start, end, then class
    and probability for each of the top k)."""

    def __init__(self, stream: io.TextIOBase, kind: str, label_names: Sequence[str], k: int):
        if kind not in ("jsonl", "csv"):
            raise ValueError(f"rows are jsonl or csv, not {kind!r}")
        self.stream, self.kind, self.label_names, self.k = stream, kind, tuple(label_names), min(k, len(label_names))
        self._csv = csv.writer(stream) if kind == "csv" else None
        if self._csv:
            self._csv.writerow(["start_s", "end_s"] + [f"{c}_{i + 1}" for i in range(self.k) for c in ("class", "probability")])

    def write(self, window: Scored) -> None:
        top = [(self.label_names[i], window.probabilities[i]) for i in top_k(window.probabilities, self.k)]
        if self._csv:
            self._csv.writerow([f"{window.start:.3f}", f"{window.end:.3f}"] + [v for name, p in top for v in (name, f"{p:.4f}")])
        else:
            row = {"start": round(window.start, 3), "end": round(window.end, 3),
                   "top": [{"class_name": name, "probability": round(p, 4)} for name, p in top]}
            self.stream.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.stream.flush()


def kind_of(path: str) -> str:
    """The row format a file name asks for: .csv, else JSON lines."""
    return "csv" if path.lower().endswith(".csv") else "jsonl"


def plot(windows: Sequence[Scored], found: Sequence[Segment], label_names: Sequence[str], path: str, title: str = "") -> None:
    """Class probabilities over time (window centres), the segments shaded in their class's colour.
    Only classes that reach 0.2 somewhere get a line, so the legend stays readable."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    palette = plt.get_cmap("tab20").colors
    colours = palette[::2] + palette[1::2]  # the ten strong colours first
    shown = [c for c in range(len(label_names)) if any(w.probabilities[c] >= 0.2 for w in windows)]
    fig, ax = plt.subplots(figsize=(11, 4))
    times = [w.centre for w in windows]
    for s in found:
        ax.axvspan(s.start, s.end, color=colours[s.class_id % 20], alpha=0.18, lw=0)
        ax.text((s.start + s.end) / 2, 1.02, s.class_name, ha="center", va="bottom", fontsize=8, color=colours[s.class_id % 20])
    for c in shown:
        ax.plot(times, [w.probabilities[c] for w in windows], color=colours[c % 20], lw=1.6, label=label_names[c])
    ax.set_xlim(0, max((w.end for w in windows), default=1.0))
    ax.set_ylim(0, 1.12)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("probability")
    ax.set_title(title, fontsize=10, loc="left")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def chunks(items: Iterable, size: int) -> Iterator[list]:
    """Lists of up to `size` consecutive items."""
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
