"""Measures how a blue-green switch behind Caddy looks to clients under load.

Compares the pointer-file switch (Caddy reads the upstream from a file per request; switching is an
atomic rename, no reload) with rewriting a static site and running ``caddy reload``. Both run in the
same invocation, against the same two app containers, with new-connection and keep-alive clients.
``--tune`` instead measures plain reloads (for config changes that are not switches) under Caddy
settings that might make them drop less. All traffic stays on 127.0.0.1 and every phase is bounded.

    python bench/switch.py [--switches 20] [--clients 4] [--caddy-versions] [--tune]
"""

from __future__ import annotations

import argparse
import itertools
import os
import shlex
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.caddy import CaddyProcess, caddy_binary, caddy_version
from tests.support.load import LoadResult, SwitchSummary, summarize_switches
from tests.support.load_process import LoadProcess
from tests.support.net import LOOPBACK, free_loopback_port, wait_for_body
from tests.support.switching import (
    SITE_HOST,
    AppSlots,
    Slot,
    drive_switches,
    pointer_site,
    static_site,
    write_pointer,
)

DEBIAN_CADDY = "/usr/bin/caddy"
SETTLE_SECONDS = 0.5
MAX_REQUESTS_PER_PHASE = 200_000

# Reload-tuning variants: extra lines for Caddy's global options block.
TUNE_VARIANTS: dict[str, tuple[str, ...]] = {
    "defaults": (),
    "grace_period 10s": ("grace_period 10s",),
    "keepalive_interval 5s": ("servers {\n\t\tkeepalive_interval 5s\n\t}",),
    "keepalive_interval 1s": ("servers {\n\t\tkeepalive_interval 1s\n\t}",),
    "grace 10s + ka 5s": ("grace_period 10s", "servers {\n\t\tkeepalive_interval 5s\n\t}"),
    # Caddy applies shutdown_delay only to listeners that close; a reload keeps them open.
    "shutdown_delay 2s": ("shutdown_delay 2s",),
}


@dataclass(frozen=True)
class Phase:
    """One measured run: a mechanism, a client mode, a Caddy binary and its global options."""

    mechanism: str  # "pointer", "reload" or "tune"
    keepalive: bool
    binary: str
    label: str
    global_options: tuple[str, ...] = ()

    @property
    def mode(self) -> str:
        return "keep-alive" if self.keepalive else "new-conn"


@dataclass
class PhaseResult:
    phase: Phase
    load: LoadResult
    summary: SwitchSummary
    failure_kinds: Counter[str] = field(default_factory=Counter)


def _version_text(binary: str) -> str:
    return ".".join(map(str, caddy_version(binary)))


def _failure_kind(description: str) -> str:
    return description.split(":", 1)[0]


def _mechanism(
    phase: Phase, caddy: CaddyProcess, port: int, pointer: Path, slots: Sequence[Slot]
) -> tuple[str, Callable[[Slot], None], Sequence[Slot]]:
    """The first site text, the switch action and the slots to alternate, for ``phase``."""
    blue = slots[0]
    if phase.mechanism == "pointer":
        return (
            pointer_site(port, pointer),
            lambda slot: write_pointer(pointer, slot.upstream),
            slots,
        )
    if phase.mechanism == "reload":

        def rewrite_and_reload(slot: Slot) -> None:
            caddy.write_site("app", static_site(port, slot.upstream))
            caddy.reload()

        return static_site(port, blue.upstream), rewrite_and_reload, slots

    generation = itertools.count(1)

    def tuned_site(number: int) -> str:
        # A config that differs on every reload, so Caddy cannot skip it as unchanged.
        return pointer_site(port, pointer, extra=[f"header X-Config-Generation {number}"])

    def reload_only(slot: Slot) -> None:
        caddy.write_site("app", tuned_site(next(generation)))
        caddy.reload()

    # Traffic stays on one slot: only the reload itself is measured.
    return tuned_site(0), reload_only, (blue, blue)


def run_phase(phase: Phase, slots: Sequence[Slot], args: argparse.Namespace) -> PhaseResult:
    """Start a fresh Caddy, put load on it, perform the switches (or reloads), and judge them."""
    blue = slots[0]
    port = free_loopback_port()
    url, host_header = f"http://{LOOPBACK}:{port}/", f"{SITE_HOST}:{port}"
    bound = 2 * SETTLE_SECONDS + args.switches * args.interval + 20
    with tempfile.TemporaryDirectory(prefix="codeb-bench-") as scratch:
        directory = Path(scratch)
        pointer = directory / "upstream"
        write_pointer(pointer, blue.upstream)
        caddy = CaddyProcess(directory / "caddy", binary=phase.binary, global_options=phase.global_options)
        site, switch_to, targets = _mechanism(phase, caddy, port, pointer, slots)
        with caddy:
            caddy.write_site("app", site)
            caddy.reload()
            wait_for_body(url, blue.body, host_header=host_header)
            with LoadProcess(
                url,
                host_header,
                clients=args.clients,
                keepalive=phase.keepalive,
                max_seconds=bound,
                max_requests=MAX_REQUESTS_PER_PHASE,
            ) as load:
                switches = drive_switches(
                    load,
                    targets,
                    switch_to,
                    count=args.switches,
                    interval=args.interval,
                    settle=SETTLE_SECONDS,
                )
    result = load.result()
    summary = summarize_switches(result.check_switches(switches))
    kinds = Counter(_failure_kind(sample.describe()) for sample in result.samples if not sample.ok)
    return PhaseResult(phase, result, summary, kinds)


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


def _table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def switch_table(results: list[PhaseResult]) -> str:
    headers = [
        "mechanism",
        "caddy",
        "mode",
        "requests",
        "failed",
        "switch->new median ms",
        "max ms",
        "command median ms",
        "old slot after return",
    ]
    rows = []
    for item in results:
        s = item.summary
        rows.append(
            [
                item.phase.label,
                _version_text(item.phase.binary),
                item.phase.mode,
                str(item.load.total),
                str(item.load.failed),
                _ms(s.latency_median),
                _ms(s.latency_max),
                _ms(s.command_median),
                f"{'yes' if s.late_old else 'no'} ({s.late_old}/{s.switches})",
            ]
        )
    return _table(rows, headers)


def tune_table(results: list[PhaseResult]) -> str:
    headers = [
        "reload settings",
        "caddy",
        "mode",
        "reloads",
        "requests",
        "failed",
        "failed/reload",
        "reload median ms",
    ]
    rows = [
        [
            item.phase.label,
            _version_text(item.phase.binary),
            item.phase.mode,
            str(item.summary.switches),
            str(item.load.total),
            str(item.load.failed),
            f"{item.load.failed / max(1, item.summary.switches):.2f}",
            _ms(item.summary.command_median),
        ]
        for item in results
    ]
    return _table(rows, headers)


def failure_notes(results: list[PhaseResult]) -> str:
    notes = []
    for item in results:
        if item.load.failed:
            kinds = ", ".join(f"{kind} x{count}" for kind, count in item.failure_kinds.most_common())
            where = f"{item.phase.label} / {_version_text(item.phase.binary)} / {item.phase.mode}"
            notes.append(f"  {where}: {kinds}")
    return "failures by kind:\n" + "\n".join(notes) if notes else "no failed requests"


def plan(args: argparse.Namespace, modern: str) -> list[Phase]:
    modes = (False, True)
    if args.tune:
        return [
            Phase("tune", keepalive, modern, label, options)
            for label, options in TUNE_VARIANTS.items()
            for keepalive in modes
        ]
    phases = []
    for keepalive in modes:
        phases.append(Phase("pointer", keepalive, modern, "pointer file"))
        phases.append(Phase("reload", keepalive, modern, "caddy reload"))
        if args.caddy_versions and Path(DEBIAN_CADDY).is_file():
            phases.append(Phase("reload", keepalive, DEBIAN_CADDY, "caddy reload"))
    return phases


def reproduce_command(args: argparse.Namespace) -> str:
    words = [
        "python",
        "bench/switch.py",
        f"--switches={args.switches}",
        f"--clients={args.clients}",
        f"--interval={args.interval}",
    ]
    if args.caddy_versions:
        words.append("--caddy-versions")
    if args.tune:
        words.append("--tune")
    return shlex.join(words)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--switches", type=int, default=20, help="switches (or reloads) per phase")
    parser.add_argument("--clients", type=int, default=4, help="client threads putting load on")
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between switches")
    parser.add_argument(
        "--caddy-versions",
        action="store_true",
        help=f"also run the reload variant with {DEBIAN_CADDY} (Debian's Caddy) if present",
    )
    parser.add_argument("--tune", action="store_true", help="measure plain reloads under Caddy setting variants")
    args = parser.parse_args(argv)
    if args.switches < 1 or args.clients < 1 or args.interval <= 0:
        parser.error("--switches and --clients must be positive, --interval above zero")
    return args


def main(argv: Sequence[str] = sys.argv[1:], out: Callable[[str], None] = print) -> int:
    args = parse_args(argv)
    modern = caddy_binary()
    out(f"reproduce: cd {Path(__file__).resolve().parent.parent} && {reproduce_command(args)}")
    out(f"caddy: {modern} ({_version_text(modern)}); cores: {os.cpu_count()}")
    results: list[PhaseResult] = []
    with AppSlots(("v1", "v2"), prefix="codeb-bench") as slots:
        for phase in plan(args, modern):
            out(f"  running {phase.label} / {_version_text(phase.binary)} / {phase.mode} ...")
            results.append(run_phase(phase, slots, args))
    out("")
    out(tune_table(results) if args.tune else switch_table(results))
    out("")
    out(failure_notes(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
