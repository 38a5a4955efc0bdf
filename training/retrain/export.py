"""Export: drain the service's streams through consumer groups into a durable snapshot folder.

    python -m training export --redis-url redis://127.0.0.1:6379/0 --out data/failures

Three streams, three files: ``records.jsonl`` (one line per failure record: the record, its
stream entry id, the feedback stored for its request by then, the path of its image),
``corrections.jsonl`` (every correction sent, also those sent after an earlier export: the
pairs join them by request and page) and ``pages.jsonl`` (clean pages the service kept for
retraining), with the images in ``images/{sha256}.png``. Delivery is at-least-once: entries
are acknowledged only after the lines that hold them are on disk (temp file, fsync,
rename), and entries another reader left pending are claimed with ``XAUTOCLAIM`` once idle
long enough. Each line has a key (a record: request, page, attempt), so an entry delivered
twice is written once.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import redis

from app.failure_record import Correction, FailureRecord, PageSample, RedisKeys, SchemaMismatch

from ..progress import Progress

logger = logging.getLogger(__name__)

RECORDS_FILE = "records.jsonl"
CORRECTIONS_FILE = "corrections.jsonl"
PAGES_FILE = "pages.jsonl"
IMAGES_DIR = "images"


@dataclass
class ExportConfig:
    """Where to read failures from and where the snapshot goes."""

    out: Path = field(default=Path("data/failures"), metadata={"help": "snapshot folder"})
    redis_url: str = field(default="redis://127.0.0.1:6379/0", metadata={"help": "Redis to read"})
    stream_key: str = field(default="ocrguard:failures", metadata={"help": "the failure stream"})
    key_prefix: str = field(
        default="ocrguard:", metadata={"help": "prefix of image and feedback keys"}
    )
    group: str = field(default="training", metadata={"help": "consumer group of the exporter"})
    consumer: str = field(
        default=f"export-{socket.gethostname()}",
        metadata={"help": "this reader's name in the group (stable across restarts)"},
    )
    batch: int = field(default=100, metadata={"help": "entries read, written and acked at once"})
    min_idle_ms: int = field(
        default=600_000,
        metadata={"help": "claim other readers' pending entries idle at least this long"},
    )

    @property
    def keys(self) -> RedisKeys:
        return RedisKeys(prefix=self.key_prefix, stream=self.stream_key)

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.batch < 1:
            raise ValueError("batch must be at least 1")
        if self.min_idle_ms < 0:
            raise ValueError("min_idle_ms must be >= 0")


@dataclass
class ExportStats:
    read: int = 0
    """Stream entries delivered (claimed, re-read or new)."""
    written: int = 0
    """Lines added to the snapshot."""
    duplicates: int = 0
    """Entries whose (request_id, page, attempt) the snapshot already held."""
    claimed: int = 0
    """Entries taken over from other readers with XAUTOCLAIM."""
    missing_images: int = 0
    """Lines written without an image (expired or never stored)."""
    trimmed: int = 0
    """Pending entries whose data the stream had already trimmed away (acked, lost)."""
    unreadable: int = 0
    """Entries that are not failure records (acked and skipped)."""
    corrections: int = 0
    """Correction lines added (corrections.jsonl)."""
    pages: int = 0
    """Kept clean page lines added (pages.jsonl)."""
    other_schema: int = 0
    """Failure records of a schema version this reader does not understand (acked and
    skipped by this group; the entries stay in the stream for a reader that does)."""


def main(config: ExportConfig) -> int:
    stats = export(redis.Redis.from_url(config.redis_url), config)
    print(json.dumps(asdict(stats)))
    return 0


@dataclass(frozen=True)
class Feed:
    """One stream and the snapshot file it drains into."""

    stream: Callable[[ExportConfig], str]
    file: str
    parse: Callable[[dict[str, str]], Any]
    key: Callable[[dict[str, Any]], tuple]
    line: Callable[[redis.Redis, ExportConfig, str, Any, ExportStats], dict[str, Any]]
    counter: str
    """The ExportStats field counting its written lines."""


def record_key(record: dict[str, Any]) -> tuple:
    return (str(record["request_id"]), int(record["page"]), int(record["attempt"]))


def _record_line(client, config, entry_id: str, record: FailureRecord, stats) -> dict:
    return {
        "stream_id": entry_id,
        "record": asdict(record),
        "feedback": _feedback(client, config, record.request_id, record.page),
        "image": _save_image(client, config, record.image_sha256, stats),
    }


def _correction_line(client, config, entry_id: str, correction: Correction, stats) -> dict:
    image = (
        _save_image(client, config, correction.image_sha256, stats)
        if correction.image_sha256
        else None
    )
    return {"stream_id": entry_id, "correction": asdict(correction), "image": image}


def _page_line(client, config, entry_id: str, sample: PageSample, stats) -> dict:
    image = _save_image(client, config, sample.image_sha256, stats)
    return {"stream_id": entry_id, "sample": asdict(sample), "image": image}


FEEDS = (
    Feed(lambda c: c.keys.stream, RECORDS_FILE, FailureRecord.from_fields,
         lambda line: record_key(line["record"]), _record_line, "written"),
    Feed(lambda c: c.keys.corrections(), CORRECTIONS_FILE, Correction.from_fields,
         lambda line: (line["correction"]["request_id"], line["correction"]["page"],
                       line["correction"]["time"]), _correction_line, "corrections"),
    Feed(lambda c: c.keys.pages(), PAGES_FILE, PageSample.from_fields,
         lambda line: (line["sample"]["request_id"], line["sample"]["page"]), _page_line, "pages"),
)  # fmt: skip


def read_lines(folder: Path, name: str) -> list[dict[str, Any]]:
    """A snapshot file's lines, oldest first (empty when there is none yet)."""
    path = Path(folder) / name
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_snapshot(folder: Path) -> list[dict[str, Any]]:
    """The snapshot's failure record lines, oldest first."""
    return read_lines(folder, RECORDS_FILE)


def export(client: redis.Redis, config: ExportConfig) -> ExportStats:
    """Drain what the group has not acknowledged into ``config.out``; return the counts."""
    out = config.out
    (out / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    stats = ExportStats()
    with Progress("export", unit="entry") as progress:
        for feed in FEEDS:
            stream = feed.stream(config)
            _ensure_group(client, stream, config.group)
            seen = {feed.key(line) for line in read_lines(out, feed.file)}
            for entries in _deliveries(client, config, stream, stats):
                stats.read += len(entries)
                _store(client, config, feed, entries, seen, stats)
                progress.update(len(entries), written=stats.written, duplicates=stats.duplicates)
    logger.info("export to %s: %s", out, asdict(stats))
    return stats


def _ensure_group(client: redis.Redis, stream: str, group: str) -> None:
    try:
        client.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


Entry = tuple[str, dict[bytes, bytes] | None]


def _deliveries(
    client: redis.Redis, config: ExportConfig, stream: str, stats: ExportStats
) -> Iterable[list[Entry]]:
    """Batches of entries to store: abandoned ones claimed from dead readers, then this
    reader's own pending ones (it may have died itself), then new ones."""
    cursor = "0-0"
    while True:
        reply = client.xautoclaim(
            stream,
            config.group,
            config.consumer,
            min_idle_time=config.min_idle_ms,
            start_id=cursor,
            count=config.batch,
        )
        cursor, claimed = _str(reply[0]), reply[1]
        deleted = reply[2] if len(reply) > 2 else []
        if deleted:  # trimmed while pending: nothing left to export, only to forget
            stats.trimmed += len(deleted)
            logger.warning("%d pending entries were trimmed from the stream", len(deleted))
        entries = [(_str(i), f) for i, f in claimed]
        stats.claimed += len(entries)
        if entries:
            yield entries
        if cursor == "0-0":
            break
    for start in ("0", ">"):
        last = start
        while True:
            reply = client.xreadgroup(
                config.group, config.consumer, {stream: last}, count=config.batch
            )
            entries = [(_str(i), f) for _, batch in reply for i, f in batch]
            if not entries:
                break
            yield entries
            if start == "0":  # pending ones are acked now: ask again from the start
                last = "0"


def _store(
    client: redis.Redis,
    config: ExportConfig,
    feed: Feed,
    entries: list[Entry],
    seen: set[tuple],
    stats: ExportStats,
) -> None:
    """Write the new lines (images first), make them durable, then acknowledge."""
    lines = []
    for entry_id, fields in entries:
        if not fields:  # pending entry whose data was trimmed
            stats.trimmed += 1
            continue
        try:
            item = feed.parse({_str(k): _str(v) for k, v in fields.items()})
        except SchemaMismatch as exc:
            stats.other_schema += 1
            logger.warning("entry %s skipped: %s", entry_id, exc)
            continue
        except (TypeError, ValueError, KeyError) as exc:
            stats.unreadable += 1
            logger.warning("entry %s of %s is not readable (%s); skipped", entry_id, feed.file, exc)
            continue
        line = feed.line(client, config, entry_id, item, stats)
        key = feed.key(line)
        if key in seen:
            stats.duplicates += 1
            continue
        seen.add(key)
        lines.append(line)
    if lines:
        _append_durably(config.out / feed.file, lines)
        setattr(stats, feed.counter, getattr(stats, feed.counter) + len(lines))
    client.xack(feed.stream(config), config.group, *[entry_id for entry_id, _ in entries])


def _feedback(client: redis.Redis, config: ExportConfig, request_id: str, page: int) -> dict | None:
    """The correction of this page, from the request's feedback hash (field = page)."""
    raw = client.hget(config.keys.feedback(request_id), str(page))
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        logger.warning("feedback of %s is not JSON; ignored", request_id)
        return None
    return value if isinstance(value, dict) else None


def _save_image(
    client: redis.Redis, config: ExportConfig, sha256: str, stats: ExportStats
) -> str | None:
    relative = f"{IMAGES_DIR}/{sha256}.png"
    path = config.out / relative
    if path.exists():
        return relative
    png = client.get(config.keys.image(sha256))
    if png is None:
        stats.missing_images += 1
        return None
    _write_durably(path, lambda f: f.write(png))
    return relative


def _append_durably(path: Path, lines: list[dict[str, Any]]) -> None:
    """Old content plus ``lines`` into a temp file, fsync, rename over ``path``: a crash
    leaves either the old file or the new one, never half a line."""

    def write(f) -> None:
        if path.exists():
            with path.open("rb") as old:
                while chunk := old.read(1 << 20):
                    f.write(chunk)
        for line in lines:
            f.write((json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8"))

    _write_durably(path, write)


def _write_durably(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself must survive a crash too
    finally:
        os.close(dir_fd)


def _str(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value
