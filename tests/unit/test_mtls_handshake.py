"""A TLS handshake that fails after its caller gave up (a connect timeout, a listener
closing) must not leave an unretrieved exception behind: asyncio would log it as a
traceback ("Future exception was never retrieved") in the part's log, which the cluster
fixture rightly treats as a failure (seen in CI-like runs on a storage node)."""

from __future__ import annotations

import asyncio
import gc
import ssl

from storage.mtls import _tls_protocol


def test_a_failed_handshake_nobody_awaits_is_not_reported_as_unretrieved() -> None:
    reported: list[str] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, ctx: reported.append(ctx.get("message", "")))
        waiter = loop.create_future()
        _tls_protocol(loop, asyncio.Protocol(), ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), waiter,
                      server_side=False, server_hostname="localhost")
        callbacks_ran = asyncio.Event()  # added last: set once the earlier callbacks have run
        waiter.add_done_callback(lambda _f: callbacks_ran.set())
        waiter.set_exception(ConnectionResetError())  # the peer reset mid-handshake
        await callbacks_ran.wait()
        del waiter
        gc.collect()  # an unretrieved exception is reported when the future is freed

    asyncio.run(main())
    assert not any("never retrieved" in m for m in reported), reported
