"""A bounded HTTP load loop that records every request, for zero-drop checks around a switch.

Switch tests need far more requests than switches, and a precise answer to "did anything that
started after the switch reach the old slot". Each request is kept as one small tuple with monotonic
timestamps, so a run of 200,000 requests stays a few tens of megabytes.
"""

from __future__ import annotations

import http.client
import itertools
import ssl
import statistics
import threading
import time
import traceback
from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from codeb_infra.controller.probe import PinnedHTTPSConnection

from .net import split_loopback_url
from .running import StartStop

MAX_FAILURES_KEPT = 20


class Sample(NamedTuple):
    """One request: monotonic start and end, whether it succeeded, status (0 if none) and text.

    ``text`` is the stripped body for a response, or "ErrorType: message" when no response came.
    """

    start: float
    end: float
    ok: bool
    status: int
    text: str

    def describe(self) -> str:
        if self.status:
            return f"HTTP {self.status}: {self.text[:120]}"
        return self.text


@dataclass(frozen=True)
class SwitchCheck:
    """What clients saw around one switch from ``old_body`` to ``new_body``.

    ``late_old`` is the last response from the old slot to a request that started after the switch
    command returned (and ended before the next switch began); any such response means the switch
    was not complete when its command said so.
    """

    started: float
    returned: float
    old_body: str
    new_body: str
    first_new: Sample | None
    late_old: Sample | None

    @property
    def command_seconds(self) -> float:
        return self.returned - self.started

    @property
    def client_latency(self) -> float | None:
        """Switch command start to the end of the first response from the new slot."""
        if self.first_new is None:
            return None
        return self.first_new.end - self.started


@dataclass(frozen=True)
class Switch:
    """A switch as the driver performed it: when its command started and returned, and to what."""

    started: float
    returned: float
    old_body: str
    new_body: str


@dataclass
class LoadResult:
    """Summary of a load run; ``samples`` are ordered by start time."""

    samples: list[Sample]
    total: int
    failed: int
    failures: list[str]
    bodies: Counter[str]
    duration: float
    # One line per client that died of an unexpected exception, stopped counting before the end,
    # or never sent a request: any of these makes the run's numbers meaningless.
    client_problems: list[str] = field(default_factory=list)
    _starts: list[float] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._starts = [sample.start for sample in self.samples]

    def between(self, since: float, until: float) -> Sequence[Sample]:
        """Samples whose request started in [since, until)."""
        return self.samples[bisect_left(self._starts, since) : bisect_left(self._starts, until)]

    def first_response(self, body: str, *, ended_after: float, since: float, until: float) -> Sample | None:
        """The earliest-ending ok response with ``body`` that ended after ``ended_after``.

        Only requests started in [since, until) count, so a later switch back to the same body
        is not mistaken for this one.
        """
        matches = (
            sample
            for sample in self.between(since, until)
            if sample.ok and sample.text == body and sample.end >= ended_after
        )
        return min(matches, key=lambda sample: sample.end, default=None)

    def last_started_after(self, body: str, *, after: float, until: float) -> Sample | None:
        """The last ok response with ``body`` to a request that ran wholly within (after, until).

        A request still in flight at ``until`` (the next switch) may rightly see either side of
        that next switch, so it is no evidence against this one.
        """
        late = [
            sample
            for sample in self.between(after, until)
            if sample.ok and sample.text == body and sample.start > after and sample.end < until
        ]
        return late[-1] if late else None

    def check_switch(
        self,
        switch: Switch,
        *,
        since: float | None = None,
        until: float | None = None,
    ) -> SwitchCheck:
        """Judge one switch; ``since``/``until`` bound it by the previous and next switch."""
        lower = since if since is not None else float("-inf")
        upper = until if until is not None else float("inf")
        return SwitchCheck(
            started=switch.started,
            returned=switch.returned,
            old_body=switch.old_body,
            new_body=switch.new_body,
            first_new=self.first_response(switch.new_body, ended_after=switch.started, since=lower, until=upper),
            late_old=self.last_started_after(switch.old_body, after=switch.returned, until=upper),
        )

    def check_switches(self, switches: Sequence[Switch]) -> list[SwitchCheck]:
        """Judge a series of switches, each bounded by its neighbours."""
        checks = []
        for index, switch in enumerate(switches):
            since = switches[index - 1].returned if index > 0 else None
            until = switches[index + 1].started if index + 1 < len(switches) else None
            checks.append(self.check_switch(switch, since=since, until=until))
        return checks


@dataclass(frozen=True)
class SwitchSummary:
    """The numbers a switch bench prints for a series of switches."""

    switches: int
    latency_median: float | None
    latency_max: float | None
    command_median: float
    missing_new: int
    late_old: int


def summarize_switches(checks: Sequence[SwitchCheck]) -> SwitchSummary:
    latencies = [check.client_latency for check in checks if check.client_latency is not None]
    return SwitchSummary(
        switches=len(checks),
        latency_median=statistics.median(latencies) if latencies else None,
        latency_max=max(latencies) if latencies else None,
        command_median=statistics.median(check.command_seconds for check in checks) if checks else 0.0,
        missing_new=sum(1 for check in checks if check.first_new is None),
        late_old=sum(1 for check in checks if check.late_old is not None),
    )


class ClientDied(AssertionError):
    """A load client died or stopped counting: the run's "0 failed" would not mean 0 failed."""


def checked(result: LoadResult) -> LoadResult:
    if result.client_problems:
        raise ClientDied("; ".join(result.client_problems))
    return result


class LoadLoop(StartStop):
    """``clients`` threads sending GETs to a loopback ``url`` until stopped or a bound is hit.

    With ``keepalive=False`` each request opens a new connection, as a browser's first visit does;
    with ``keepalive=True`` each client reuses one connection and, after an error, counts it and
    reconnects, as a long-lived client does. The loop ends by itself after ``max_seconds`` or
    ``max_requests`` even if nobody stops it: threads are daemons and check a deadline.
    """

    def __init__(
        self,
        url: str,
        host_header: str,
        clients: int = 4,
        keepalive: bool = False,
        max_seconds: float = 60,
        max_requests: int = 200_000,
        timeout: float = 5.0,
        root_pem: str | None = None,
    ) -> None:
        if clients < 1:
            raise ValueError("clients must be at least 1")
        self.host, self.port, self.path = split_loopback_url(url)
        # https: TLS with the Host header as SNI, verified against root_pem (e.g. Caddy's local CA).
        self.https = url.startswith("https://")
        self.root_pem = root_pem
        self.host_header = host_header
        self.clients = clients
        self.keepalive = keepalive
        self.max_seconds = max_seconds
        self.max_requests = max_requests
        self.timeout = timeout
        self._stop = threading.Event()
        self._issued = itertools.count()
        self._threads: list[threading.Thread] = []
        self._records: list[list[Sample]] = []
        self._crashes: dict[int, str] = {}
        self._texts: dict[str, str] = {}
        self._started_at = 0.0
        self._deadline = 0.0
        self._stopped_at: float | None = None
        self._alive_at_stop: list[bool] = []
        self._bound_hit = False

    # -- running -------------------------------------------------------------------------------

    def start(self) -> None:
        if self._threads:
            raise RuntimeError("this load loop has already run")
        self._started_at = time.monotonic()
        self._deadline = self._started_at + self.max_seconds
        for index in range(self.clients):
            records: list[Sample] = []
            self._records.append(records)
            thread = threading.Thread(
                target=self._client, args=(index, records), name=f"load-client-{index}", daemon=True
            )
            self._threads.append(thread)
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        if self._stopped_at is None:
            self._stopped_at = time.monotonic()
            self._alive_at_stop = [thread.is_alive() for thread in self._threads]
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 1.0)

    @property
    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def wait(self, seconds: float) -> None:
        """Sleep while load runs; returns early if the loop hit a bound."""
        end = time.monotonic() + seconds
        while self.running and time.monotonic() < end:
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))

    def saw(self, body: str, since: float) -> bool:
        """Whether any client got ``body`` in a response that ended at or after ``since`` (its
        last few requests are looked at; safe to call while the clients run)."""
        return any(
            sample.ok and sample.text == body and sample.end >= since
            for records in self._records
            for sample in records[-8:]
        )

    def _more(self) -> bool:
        if self._stop.is_set():
            return False
        if time.monotonic() >= self._deadline or next(self._issued) >= self.max_requests:
            self._bound_hit = True
            return False
        return True

    def _intern(self, text: str) -> str:
        # Bodies repeat ("v1", "v2"); keep one string object per distinct text.
        return self._texts.setdefault(text, text)

    def _connect(self) -> http.client.HTTPConnection:
        if self.https:
            context = (
                ssl.create_default_context(cadata=self.root_pem) if self.root_pem else ssl.create_default_context()
            )
            return PinnedHTTPSConnection(self.host_header, self.host, self.port, context, self.timeout)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def _client(self, index: int, records: list[Sample]) -> None:
        try:
            self._requests(records)
        except BaseException as error:  # any escape ends this client: keep why, for the result
            self._crashes[index] = "".join(traceback.format_exception_only(error)).strip()
            raise

    def _requests(self, records: list[Sample]) -> None:
        headers = {"Host": self.host_header}
        if not self.keepalive:
            headers["Connection"] = "close"
        connection: http.client.HTTPConnection | None = None
        try:
            while self._more():
                if connection is None:
                    connection = self._connect()
                start = time.monotonic()
                try:
                    connection.request("GET", self.path, headers=headers)
                    response = connection.getresponse()
                    text = response.read().decode("utf-8", "replace").strip()
                    status = response.status
                except (OSError, http.client.HTTPException) as error:
                    end = time.monotonic()
                    records.append(Sample(start, end, False, 0, self._intern(_describe(error))))
                    connection.close()
                    connection = None
                    continue
                end = time.monotonic()
                records.append(Sample(start, end, status == 200, status, self._intern(text[:200])))
                if not self.keepalive:
                    connection.close()
                    connection = None
        finally:
            if connection is not None:
                connection.close()

    # -- results -------------------------------------------------------------------------------

    def result(self) -> LoadResult:
        """Merge what the clients recorded; call after the loop stopped. Raises
        :class:`ClientDied` if any client died, stopped counting, or never sent a request."""
        return checked(self.collect())

    def client_problems(self) -> list[str]:
        problems = [f"load-client-{index} died: {why}" for index, why in sorted(self._crashes.items())]
        for index, records in enumerate(self._records):
            if index in self._crashes:
                continue
            if not records:
                problems.append(f"load-client-{index} sent no request")
            elif self._alive_at_stop and not self._alive_at_stop[index] and not self._bound_hit:
                problems.append(f"load-client-{index} had stopped before the loop was stopped")
            elif (
                self._stopped_at is not None
                and records[-1].end < self._stopped_at - (self.timeout + 1.0)
                and not self._bound_hit
            ):
                problems.append(
                    f"load-client-{index} stopped counting {self._stopped_at - records[-1].end:.1f}s before the end"
                )
        return problems

    def collect(self) -> LoadResult:
        """What :meth:`result` returns, without judging the clients (for a child process)."""
        if self.running:
            raise RuntimeError("stop the load loop before reading its result")
        samples = sorted(itertools.chain.from_iterable(self._records))
        failures = [sample for sample in samples if not sample.ok]
        bodies: Counter[str] = Counter(sample.text for sample in samples if sample.ok)
        return LoadResult(
            samples=samples,
            total=len(samples),
            failed=len(failures),
            failures=[sample.describe() for sample in failures[:MAX_FAILURES_KEPT]],
            bodies=bodies,
            duration=max((sample.end for sample in samples), default=self._started_at) - self._started_at,
            client_problems=self.client_problems(),
        )


def _describe(error: BaseException) -> str:
    message = str(error) or type(error).__doc__ or ""
    return f"{type(error).__name__}: {message.strip().splitlines()[0] if message.strip() else ''}"
