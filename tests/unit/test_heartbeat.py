"""The heartbeat thread answers while the event loop is busy, and reports how busy."""

import asyncio
import threading
import time

from server.heartbeat import HeartbeatResponder, ping


def test_heartbeat_answers_while_the_loop_is_busy(tmp_path):
    path = tmp_path / "i1.hb"
    answers: list = []

    def pinger() -> None:
        time.sleep(0.5)  # the loop is blocked by then
        answers.append(ping(path, timeout=0.4))

    async def main() -> None:
        hb = HeartbeatResponder(path)
        hb.start()
        await asyncio.sleep(0.2)
        assert ping(path)["loop_lag"] < 0.2  # idle loop
        t = threading.Thread(target=pinger)
        t.start()
        time.sleep(1.2)  # a long statement holding the event loop
        t.join()
        hb.close()

    asyncio.run(main())
    assert answers and answers[0] is not None, "no answer while the loop was busy"
    assert answers[0]["loop_lag"] >= 0.3, answers


def test_no_answer_from_nobody(tmp_path):
    assert ping(tmp_path / "missing.hb", timeout=0.2) is None
