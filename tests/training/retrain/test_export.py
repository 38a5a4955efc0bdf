"""Export through a consumer group against the real Redis: snapshot content, acks, re-runs,
and a reader that dies before acknowledging."""

from __future__ import annotations

import json
import time

import pytest

from training.retrain.export import ExportConfig, export, read_snapshot

from ..records import CLEAN, page_png, record


@pytest.fixture
def config(tmp_path, key_prefix) -> ExportConfig:
    return ExportConfig(
        out=tmp_path / "snapshot",
        stream_key=key_prefix + "failures",
        key_prefix=key_prefix,
        group="training",
        consumer="exporter",
        batch=2,  # several batches even for a handful of entries
        min_idle_ms=50,
    )


def log(client, config: ExportConfig, rec, image: bytes | None = b"png") -> str:
    if image is not None:
        client.set(f"{config.key_prefix}image:{rec.image_sha256}", image)
    return client.xadd(config.stream_key, rec.to_fields()).decode()


def pending(client, config: ExportConfig) -> int:
    return client.xpending(config.stream_key, config.group)["pending"]


def keys(folder) -> list[tuple[str, int, int]]:
    return [
        (r["request_id"], r["page"], r["attempt"])
        for r in (line["record"] for line in read_snapshot(folder))
    ]


def test_export_writes_snapshot_acks_and_reruns_empty(redis_client, config):
    images = {n: page_png(n) for n in range(3)}
    ids = [
        log(redis_client, config, record("a", 1, 1, image_sha256="s0"), images[0]),
        log(redis_client, config, record("a", 1, 2, image_sha256="s0"), images[0]),
        log(redis_client, config, record("b", 2, 1, image_sha256="s2"), images[2]),
        log(redis_client, config, record("c", image_sha256="gone"), None),
    ]
    feedback = {"page": 1, "text": "Nota fiscal", "time": 1.0}
    redis_client.hset(f"{config.key_prefix}feedback:a", "1", json.dumps(feedback))

    stats = export(redis_client, config)

    lines = read_snapshot(config.out)
    assert [line["stream_id"] for line in lines] == ids
    assert keys(config.out) == [("a", 1, 1), ("a", 1, 2), ("b", 2, 1), ("c", 1, 1)]
    assert lines[0]["feedback"] == feedback and lines[2]["feedback"] is None
    assert lines[0]["record"]["output"] == record("a").output
    assert [line["image"] for line in lines] == [
        "images/s0.png",
        "images/s0.png",
        "images/s2.png",
        None,
    ]
    assert (config.out / "images/s0.png").read_bytes() == images[0]
    assert (config.out / "images/s2.png").read_bytes() == images[2]
    assert (stats.read, stats.written, stats.duplicates, stats.missing_images) == (4, 4, 0, 1)
    assert pending(redis_client, config) == 0
    assert not list(config.out.glob(".*.tmp"))

    again = export(redis_client, config)
    assert (again.read, again.written) == (0, 0)
    assert len(read_snapshot(config.out)) == 4

    log(redis_client, config, record("d"))
    assert export(redis_client, config).written == 1
    assert keys(config.out)[-1] == ("d", 1, 1)


def test_same_record_delivered_twice_is_written_once(redis_client, config):
    log(redis_client, config, record("a"))
    log(redis_client, config, record("a", final_output=CLEAN))  # a retried XADD
    stats = export(redis_client, config)
    assert (stats.written, stats.duplicates) == (1, 1)
    assert keys(config.out) == [("a", 1, 1)]
    assert pending(redis_client, config) == 0


def test_entries_of_a_dead_reader_are_claimed(redis_client, config):
    for n in range(5):
        log(redis_client, config, record(f"r{n}"))
    export(redis_client, config)  # creates the group, exports the first five
    for n in range(5, 9):
        log(redis_client, config, record(f"r{n}"))
    # A reader takes three entries and dies before writing or acknowledging them.
    taken = redis_client.xreadgroup(config.group, "dead", {config.stream_key: ">"}, count=3)
    assert len(taken[0][1]) == 3
    time.sleep(0.1)  # longer than min_idle_ms

    stats = export(redis_client, config)

    assert stats.claimed == 3 and stats.written == 4 and stats.duplicates == 0
    assert sorted(keys(config.out)) == sorted((f"r{n}", 1, 1) for n in range(9))
    assert len(keys(config.out)) == 9
    assert pending(redis_client, config) == 0


def test_entries_of_a_live_reader_are_left_alone(redis_client, config):
    log(redis_client, config, record("a"))
    redis_client.xgroup_create(config.stream_key, config.group, id="0")
    redis_client.xreadgroup(config.group, "busy", {config.stream_key: ">"})
    stats = export(redis_client, ExportConfig(**{**config.__dict__, "min_idle_ms": 60_000}))
    assert stats.read == 0 and not read_snapshot(config.out)
    assert pending(redis_client, config) == 1


def test_crash_after_write_before_ack_loses_and_duplicates_nothing(
    redis_client, config, monkeypatch
):
    for n in range(5):
        log(redis_client, config, record(f"r{n}"))
    acks = 0

    def dying_xack(*args, **kwargs):
        nonlocal acks
        acks += 1
        if acks == 2:  # the second batch is on disk, then the process dies
            raise KeyboardInterrupt
        return type(redis_client).xack(redis_client, *args, **kwargs)

    monkeypatch.setattr(redis_client, "xack", dying_xack)
    with pytest.raises(KeyboardInterrupt):
        export(redis_client, config)
    monkeypatch.undo()
    assert len(read_snapshot(config.out)) == 4 and pending(redis_client, config) == 2

    stats = export(redis_client, config)  # the same consumer restarts: re-reads its own pending

    assert (stats.written, stats.duplicates) == (1, 2)
    assert sorted(keys(config.out)) == sorted((f"r{n}", 1, 1) for n in range(5))
    assert pending(redis_client, config) == 0


def test_entries_of_another_schema_and_non_records_are_skipped_not_misread(redis_client, config):
    future = record("future").to_fields() | {"schema": "99"}
    redis_client.xadd(config.stream_key, future)
    redis_client.xadd(config.stream_key, {"hello": "world", "schema": "1"})
    log(redis_client, config, record("now"))
    stats = export(redis_client, config)
    assert keys(config.out) == [("now", 1, 1)]
    assert (stats.other_schema, stats.unreadable, stats.written) == (1, 1, 1)
    assert pending(redis_client, config) == 0  # acked: the export does not stall on them
