"""Character counting vs send-response on a realistic engraving, over a real pty.

``python -m bench.grbl_stream [--text ...] [--feeds 1200,3000] [--latencies-ms 2,16]``

One GRBL simulator in real time (speedup 1) with the wire modelled at 115200 baud (10 bits a
byte) and each reply delayed by a latency (USB-serial adapter plus GRBL's parse time: about
2 ms for a CH340, 16 ms for an FTDI chip at its default latency timer). The same program, a
Hershey text toolpath (``to_gcode(render_text(...))``), is streamed by the production
:class:`~drivers.laser.grbl.streamer.GrblLink` both ways, at each feed.

Measured: wall time until motion ends (``G4 P0.01`` sync), lines/s, and planner starvation: the
machine time the simulated planner sat empty between two blocks (while lines remained). The
last stdout line is the JSON summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from typing import Any

from drivers.laser.gcode import GcodeProgram, to_gcode
from drivers.laser.grbl.driver import GrblLaser
from drivers.laser.grbl.sim import Faults, GrblSimulator
from drivers.laser.templates import load_templates
from drivers.laser.toolpath import render_text

DEFAULT_TEXT = "Anna & Ben"


def engraving(text: str, feed: float) -> GcodeProgram:
    toolpath = render_text(text, template=load_templates()["ring_band"])
    return to_gcode(toolpath, power_s=600, feed_mm_min=feed, travel_mm_min=3000.0)


async def run_once(
    laser: GrblLaser, sim: GrblSimulator, program: GcodeProgram, *, counting: bool, latency: float
) -> dict[str, Any]:
    link = laser.link
    assert link is not None
    sim.new_piece(Faults(reply_delay_s=latency))
    sim.reset_stats()
    started = time.perf_counter()
    await link.stream(program.lines, counting=counting, stall_s=60.0)
    await link.request("G4 P0.01", within=120.0)  # ok once the planner is empty
    elapsed = time.perf_counter() - started
    stats = sim.stats
    return {
        "mode": "character_counting" if counting else "send_response",
        "lines": len(program.lines),
        "seconds": round(elapsed, 3),
        "lines_per_s": round(len(program.lines) / elapsed, 1),
        "planner_starved_s": round(stats.starved_s, 3),
        "starved_share": round(stats.starved_s / elapsed, 3),
        "max_rx_used": stats.max_rx_used,
        "rx_overflows": stats.rx_overflows,
        "lost_bytes": stats.lost_bytes,
    }


async def bench(
    text: str, feeds: list[float], latencies_ms: list[float], baud: int
) -> dict[str, Any]:
    sim = GrblSimulator(speedup=1.0, baud=baud)
    laser = GrblLaser("bench", sim.start(), {"reply_timeout_s": 5.0})
    await laser.open()
    results: list[dict[str, Any]] = []
    try:
        for latency_ms in latencies_ms:
            for feed in feeds:
                program = engraving(text, feed)
                for counting in (True, False):
                    row = await run_once(
                        laser, sim, program, counting=counting, latency=latency_ms / 1000
                    )
                    results.append(
                        {
                            "latency_ms": latency_ms,
                            "feed_mm_min": feed,
                            "estimated_s": round(program.estimated_seconds, 3),
                            **row,
                        }
                    )
                    print(json.dumps(results[-1]))
    finally:
        await laser.close()
        sim.stop()
    return summarize(results, text, baud)


def summarize(results: list[dict[str, Any]], text: str, baud: int) -> dict[str, Any]:
    """Per (latency, feed): counting's lines/s over send-response's, and both starvations."""
    ratios = {}
    for key in sorted({(r["latency_ms"], r["feed_mm_min"]) for r in results}):
        rows = {r["mode"]: r for r in results if (r["latency_ms"], r["feed_mm_min"]) == key}
        counting, send_response = rows["character_counting"], rows["send_response"]
        ratios[f"{key[0]:g}ms@{key[1]:g}mm/min"] = {
            "lines_per_s_ratio": round(counting["lines_per_s"] / send_response["lines_per_s"], 2),
            "starved_s_counting": counting["planner_starved_s"],
            "starved_s_send_response": send_response["planner_starved_s"],
        }
    return {
        "benchmark": "grbl_stream",
        "text_chars": len(text),
        "baud": baud,
        "machine": {"nproc": os.cpu_count(), "python": platform.python_version()},
        "runs": results,
        "counting_vs_send_response": ratios,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--text", default=DEFAULT_TEXT)
    parser.add_argument("--feeds", default="1200,3000", help="mm/min, comma-separated")
    parser.add_argument("--latencies-ms", default="2,16", help="reply latency, comma-separated")
    parser.add_argument("--baud", type=int, default=115200)
    args = parser.parse_args()
    feeds = [float(feed) for feed in args.feeds.split(",")]
    latencies = [float(latency) for latency in args.latencies_ms.split(",")]
    print(json.dumps(asyncio.run(bench(args.text, feeds, latencies, args.baud))))


if __name__ == "__main__":
    main()
