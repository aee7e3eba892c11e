"""The webhook URL guard (SSRF): non-public targets are refused unless allow-listed; the
delivery connects to the address that was checked."""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import ip_address

import pytest
from tests.actions.conftest import FAST, Receiver, model_text, open_world

from leadscore.actions import outbox
from leadscore.actions.delivery import _pinned
from leadscore.actions.dispatcher import Dispatcher
from leadscore.actions.webhooks import AllowList, DeliveryError, check_target, set_allow_list

NOTHING = AllowList()
REFUSED = [
    "http://127.0.0.1/hook", "http://127.1.2.3:8080/x", "http://10.0.0.5/", "http://172.16.0.1/",
    "http://192.168.1.10/", "http://169.254.169.254/latest/meta-data/", "http://0.0.0.0/",
    "http://100.64.0.1/", "http://224.0.0.1/", "http://[::1]/", "http://[fe80::1]/", "http://[fc00::1]/",
    "http://[::ffff:127.0.0.1]/", "http://[::ffff:10.0.0.1]/", "http://[::]/", "https://user:pw@127.0.0.1:443/",
    "http://localhost:8000/hook",  # resolved by the system: loopback
    # IPv6 addresses that carry a non-public IPv4 address: NAT64, 6to4, IPv4-compatible
    "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/", "http://[64:ff9b::7f00:1]/", "http://[64:ff9b::10.0.0.1]/",
    "http://[2002:7f00:1::]/", "http://[2002:a9fe:a9fe::1]/", "http://[2002:c0a8:101::]/",
    "http://[::7f00:1]/", "http://[::169.254.169.254]/", "http://[::a00:1]/",
    "http://[64:ff9b:1::5db8:d822]/",  # NAT64 prefix for local use (RFC 8215)
]


@pytest.fixture(autouse=True)
def _no_configured_list() -> Iterator[None]:
    set_allow_list(None)
    yield
    set_allow_list(None)


@pytest.mark.parametrize("url", REFUSED)
def test_non_public_targets_are_refused_by_default(url: str) -> None:
    with pytest.raises(DeliveryError, match="not a public address.*LEADSCORE_WEBHOOK_ALLOW"):
        check_target(url, allow=NOTHING)


def test_host_names_are_judged_by_every_address_they_resolve_to() -> None:
    def resolver(host: str, port: int) -> list[str]:
        return {"inside.example": ["10.1.2.3"], "mixed.example": ["93.184.216.34", "::ffff:192.168.0.1"],
                "public.example": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]}[host]

    with pytest.raises(DeliveryError, match="'inside.example' resolves to 10.1.2.3"):
        check_target("https://inside.example/hook", allow=NOTHING, resolver=resolver)
    with pytest.raises(DeliveryError, match="resolves to ::ffff:192.168.0.1"):
        check_target("https://mixed.example/hook", allow=NOTHING, resolver=resolver)
    nat64 = {"metadata.example": ["64:ff9b::a9fe:a9fe"]}
    with pytest.raises(DeliveryError, match="resolves to 64:ff9b::a9fe:a9fe, which is not a public"):
        check_target("https://metadata.example/x", allow=NOTHING, resolver=lambda host, port: nat64[host])
    target = check_target("https://public.example/hook", allow=NOTHING, resolver=resolver)
    assert (target.host, target.address) == ("public.example", "93.184.216.34")  # the first, as resolved

    def broken(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(DeliveryError, match="cannot resolve host 'nowhere.example'"):
        check_target("https://nowhere.example/hook", allow=NOTHING, resolver=broken)


def test_public_addresses_and_bad_urls() -> None:
    assert check_target("https://93.184.216.34/hook", allow=NOTHING).address == "93.184.216.34"
    # an IPv6 address that carries a public IPv4 address is public (DNS64 gives such ones)
    for carrier in ("64:ff9b::5db8:d822", "2002:5db8:d822::1", "::ffff:93.184.216.34"):
        address = check_target(f"https://[{carrier}]/hook", allow=NOTHING).address
        assert address is not None and ip_address(address) == ip_address(carrier)
    for url in ("ftp://93.184.216.34/x", "http:///nohost", "http://[::1/x"):
        with pytest.raises(DeliveryError, match="refused webhook target"):
            check_target(url, allow=NOTHING)


def test_the_allow_list_permits_networks_and_host_names() -> None:
    allow = AllowList.parse(" 127.0.0.0/8, 10.0.0.5 ,fd00::/8, Hooks.Internal. ,")
    assert check_target("http://127.0.0.1:9/x", allow=allow).address == "127.0.0.1"
    mapped = check_target("http://[::ffff:127.0.0.1]/x", allow=allow).address
    assert mapped is not None and ip_address(mapped).ipv4_mapped == ip_address("127.0.0.1")
    assert check_target("http://10.0.0.5/x", allow=allow).address == "10.0.0.5"
    assert check_target("http://[fd12::1]/x", allow=allow).address == "fd12::1"
    named = check_target("http://hooks.internal/x", allow=allow)
    assert (named.host, named.address) == ("hooks.internal", None)  # connects by name
    with pytest.raises(DeliveryError):
        check_target("http://10.0.0.6/x", allow=allow)
    with pytest.raises(DeliveryError):
        check_target("http://[::1]/x", allow=allow)


def test_the_request_goes_to_the_checked_address() -> None:
    target = check_target("https://hooks.example:8443/in?x=1", allow=NOTHING,
                          resolver=lambda host, port: ["93.184.216.34"])
    url, headers, extensions = _pinned(target.url, target)
    assert str(url) == "https://93.184.216.34:8443/in?x=1"
    assert headers == {"Host": "hooks.example:8443"}
    assert extensions == {"sni_hostname": "hooks.example"}  # TLS still checks the name


def test_dispatcher_refuses_a_loopback_receiver_unless_allowed(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    receiver = Receiver().start()
    world = open_world(sqlite_url, model_text(receiver.url).replace("max_attempts: 50", "max_attempts: 1"))
    try:
        monkeypatch.setenv("LEADSCORE_WEBHOOK_ALLOW", "")
        world.pricing("L1")
        dispatcher = Dispatcher(world.store, FAST)
        dispatcher.run_once()
        with world.store.read() as session:
            [row] = outbox.list_rows(session)
        assert receiver.calls == 0
        assert row["status"] == "dead" and "not a public address" in row["last_error"]

        set_allow_list("127.0.0.1")  # the setting webhook_allow
        with world.store.write() as session:
            assert outbox.requeue(session, None, 0, statuses=("dead",)) == 1
        dispatcher.run_once()
        dispatcher.close()
        assert len(receiver.unique) == 1
    finally:
        receiver.stop()
        world.store.dispose()


def test_a_host_name_is_connected_to_by_the_address_checked(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A name resolved once: the delivery does not look it up again (DNS rebinding)."""
    receiver = Receiver().start()
    lookups: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    monkeypatch.setattr("leadscore.actions.webhooks.resolve", resolve)
    monkeypatch.setenv("LEADSCORE_WEBHOOK_ALLOW", "127.0.0.1")
    url = f"http://hooks.invalid:{receiver.port}/hook"  # .invalid never resolves for real
    world = open_world(sqlite_url, model_text(url))
    try:
        world.pricing("L1")
        dispatcher = Dispatcher(world.store, FAST)
        dispatcher.run_once()
        dispatcher.close()
        [got] = receiver.unique.values()
        assert got.headers["Host"] == f"hooks.invalid:{receiver.port}"
        assert lookups == ["hooks.invalid"]
    finally:
        receiver.stop()
        world.store.dispose()
