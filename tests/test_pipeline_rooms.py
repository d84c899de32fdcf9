"""The pipeline's rooms on their own, without threads of a pipeline, cameras or models: the typed
stage queue, the newest-frame mailbox, the throttled event log, the one live-settings record (and
that every front end takes its bounds from it), and the source check shared by the runner and the
window."""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

import pytest

from edgefer import live as vocab
from edgefer.pipeline import cli as run_cli
from edgefer.pipeline.eventlog import IN_FULL, EventLog
from edgefer.pipeline.events import PipelineEvent
from edgefer.pipeline.mailbox import Mailbox
from edgefer.pipeline.queues import StageQueue, Stamped
from edgefer.pipeline.settings import LiveSettings, PipelineSettings
from edgefer.pipeline.sources import SourceSpec
from edgefer.pipeline.stats import StatsCollector
from ui.prefs import prefs_from_mapping


# ---- StageQueue -----------------------------------------------------------------------------
def test_live_queue_keeps_the_newest_item_and_never_drops_the_end() -> None:
    q: StageQueue[int] = StageQueue(1, threading.Event())
    assert q.offer_newest(Stamped(1, 0.0)) == 0
    assert q.offer_newest(Stamped(2, 0.0)) == 1  # the stale one is replaced and counted
    assert q.offer_newest(Stamped(3, 0.0)) == 1
    q2: StageQueue[int] = StageQueue(1, threading.Event())
    q2.close()
    assert q2.offer_newest(Stamped(9, 0.0)) == 0  # the end marker stays; the late item is not queued
    assert [s.item for s in q2.items()] == []
    got: list[int] = []
    consumer = threading.Thread(target=lambda: got.extend(s.item for s in q.items()))
    consumer.start()
    q.close()  # returns at once: the end needs no free slot, and what is queued is still delivered
    q.close()  # idempotent
    consumer.join(5)
    assert not consumer.is_alive()
    assert got == [3]


def test_close_never_waits_for_a_consumer_and_later_puts_are_refused() -> None:
    """The hang seen once in `make test`: the end used to be an item that needed a free slot, so
    `close` polled for room only a consumer could make. Now the end is a flag."""
    q: StageQueue[int] = StageQueue(1, threading.Event())
    assert q.put(Stamped(1, 0.0))
    t0 = time.monotonic()
    q.close()  # full queue, no consumer at all: returns at once
    q.close()
    assert time.monotonic() - t0 < 0.05
    assert not q.put(Stamped(2, 0.0)) and q.offer_newest(Stamped(3, 0.0)) == 0  # refused, never queued
    assert [s.item for s in q.items()] == [1]  # what was queued before the end is delivered


def test_close_racing_a_live_producer_and_consumer_always_ends() -> None:
    """close from another thread while the producer offers as fast as it can and the consumer
    takes: the consumer always ends, nothing blocks (200 rounds, each bounded by a join)."""
    for _ in range(200):
        q: StageQueue[int] = StageQueue(1, threading.Event())
        got: list[int] = []
        consumer = threading.Thread(target=lambda q=q, got=got: got.extend(s.item for s in q.items()))
        offered = threading.Event()

        def produce(q: StageQueue[int] = q, offered: threading.Event = offered) -> None:
            for i in range(50):
                q.offer_newest(Stamped(i, 0.0))
                offered.set()

        producer = threading.Thread(target=produce)
        consumer.start()
        producer.start()
        offered.wait(5)
        q.close()
        q.close()
        producer.join(5)
        consumer.join(5)
        assert not producer.is_alive() and not consumer.is_alive()
        assert got == sorted(got)  # in order, the newest kept


def test_file_queue_delivers_every_item_in_order_then_ends() -> None:
    q: StageQueue[int] = StageQueue(2, threading.Event())
    out: list[int] = []
    consumer = threading.Thread(target=lambda: out.extend(s.item for s in q.items()))
    consumer.start()
    for i in range(50):
        assert q.put(Stamped(i, float(i)))
    q.close()
    consumer.join(5)
    assert out == list(range(50))


def test_abort_unblocks_a_full_queue_and_skips_what_is_queued() -> None:
    abort = threading.Event()
    q: StageQueue[int] = StageQueue(1, abort)
    assert q.put(Stamped(1, 0.0))
    abort.set()
    assert not q.put(Stamped(2, 0.0))  # gives up instead of blocking forever
    q.close()  # room is made for the end marker
    assert [s.item for s in q.items()] == []


def test_items_calls_between_while_waiting() -> None:
    q: StageQueue[int] = StageQueue(1, threading.Event())
    calls: list[int] = []

    def between() -> None:
        calls.append(1)
        if len(calls) == 3:
            q.close()

    assert list(q.items(between=between)) == []
    assert len(calls) == 3  # called at each wait although nothing arrived


# ---- Mailbox --------------------------------------------------------------------------------
def test_mailbox_keeps_the_newest_and_notifies_once_per_take() -> None:
    box: Mailbox[str] = Mailbox()
    assert box.take() is None
    assert box.put("a") is True
    assert box.put("b") is False and box.put("c") is False
    assert box.take() == "c" and box.take() is None
    assert (box.received, box.overwritten) == (3, 2)


# ---- EventLog -------------------------------------------------------------------------------
def test_event_log_throttles_a_stage_that_fails_on_every_frame() -> None:
    stats = StatsCollector()
    seen: list[PipelineEvent] = []
    log = EventLog(stats, seen.append)
    for i in range(250):
        log.emit("error", "classify", f"frame {i}")
    log.emit("warning", "capture", "lost camera 0; reconnecting")
    errors = [e for e in seen if e.kind == "error"]
    assert len(errors) == IN_FULL + 2  # the first five, then the 100th and the 200th
    assert errors[-1].message == "frame 199 (200 errors in this stage so far)"
    snap = stats.snapshot()
    assert (snap.errors, snap.warnings) == (250, 1)
    assert log.events()[-1].stage == "capture"


def test_a_failing_event_callback_does_not_raise() -> None:
    def bad(_e: PipelineEvent) -> None:
        raise RuntimeError("callback bug")

    EventLog(StatsCollector(), bad).emit("status", "pipeline", "started")


# ---- LiveSettings: one vocabulary -----------------------------------------------------------
def test_live_settings_bounds_and_messages_name_the_control() -> None:
    live = LiveSettings()
    assert live == PipelineSettings().live  # the same defaults in both records
    assert live.with_changes(max_faces=vocab.MAX_FACES_LIMIT).max_faces == vocab.MAX_FACES_LIMIT
    for change, words in (({"heatmap": "gradcam"}, "heatmap mode"), ({"opacity": 1.5}, "heatmap opacity"),
                          ({"smoothing": 1.0}, "smoothing strength"), ({"max_faces": 0}, "max faces"),
                          ({"max_faces": vocab.MAX_FACES_LIMIT + 1}, "max faces")):
        with pytest.raises(ValueError, match=words):
            live.with_changes(**change)
    with pytest.raises(ValueError):
        PipelineSettings(max_faces=vocab.MAX_FACES_LIMIT + 1)
    settings = PipelineSettings()
    settings.apply_live(live.with_changes(heatmap="cam", opacity=0.2, smoothing=0.1, max_faces=7))
    assert (settings.heatmap.mode, settings.heatmap.opacity, settings.smoothing, settings.max_faces) == ("cam", 0.2, 0.1, 7)


def test_cli_and_window_preferences_accept_what_the_pipeline_accepts() -> None:
    parser = argparse.ArgumentParser()
    run_cli.add_arguments(parser)
    heatmap = next(a for a in parser._actions if a.dest == "heatmap")
    assert tuple(heatmap.choices or ()) == vocab.HEATMAP_MODES
    top = str(vocab.MAX_FACES_LIMIT)
    stored = {"max_faces": top, "smoothing": "0.99", "heatmap": "off", "opacity": "1.0"}
    prefs = prefs_from_mapping(stored.get)
    assert (prefs.max_faces, prefs.smoothing, prefs.heatmap, prefs.opacity) == (vocab.MAX_FACES_LIMIT, 0.99, "off", 1.0)
    assert prefs.live == LiveSettings(heatmap="off", opacity=1.0, smoothing=0.99, max_faces=vocab.MAX_FACES_LIMIT)
    refused = prefs_from_mapping({"max_faces": str(vocab.MAX_FACES_LIMIT + 1), "smoothing": "1.0"}.get)
    assert (refused.max_faces, refused.smoothing) == (vocab.DEFAULT_MAX_FACES, vocab.DEFAULT_SMOOTHING)


# ---- the source check shared by the runner and the window ---------------------------------
def test_missing_file_knows_image_sequences_and_non_files(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"x")
    assert SourceSpec.parse(str(clip)).missing_file() is None
    assert SourceSpec.parse(f"file://{clip}").missing_file() is None
    assert SourceSpec.parse(str(tmp_path / "nope.mp4")).missing_file() == tmp_path / "nope.mp4"
    assert SourceSpec.parse(str(tmp_path / "img_%04d.png")).missing_file() is None  # FFmpeg resolves it
    for live_source in ("0", "/dev/video0", "rtsp://host/stream", "csi://0"):
        assert SourceSpec.parse(live_source).missing_file() is None


def test_a_folder_is_called_a_folder_by_the_pipeline_api_not_a_missing_file(tmp_path: Path) -> None:
    """`Pipeline.start` (and so the window, which asks `SourceSpec` the same) names a folder as
    such, before any model loads; a missing file is still "not found"."""
    from edgefer.pipeline.runner import Pipeline, PipelineError

    spec = SourceSpec.parse(str(tmp_path))
    assert spec.missing_file() == tmp_path
    problem = spec.file_problem()
    assert problem is not None and f"source {tmp_path} is a folder, not a video file" in problem
    assert str(tmp_path / "img_%04d.png") in problem
    with pytest.raises(PipelineError, match="is a folder, not a video file") as info:
        Pipeline(PipelineSettings(source=str(tmp_path), headless=True)).start()
    assert "not found" not in str(info.value)
    with pytest.raises(PipelineError, match="source file not found"):
        Pipeline(PipelineSettings(source=str(tmp_path / "nope.mp4"), headless=True)).start()
    assert SourceSpec.parse(str(tmp_path / "img_%04d.png")).file_problem() is None
