"""Who wrong follow-up codes are counted against, and which proxies are believed about it."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.intake.crypto import new_follow_up_code
from services.portal.settings import PortalSettings
from services.portal.wrong_codes import client_of, code_group


def test_addresses_inside_one_ipv6_64_network_are_one_client() -> None:
    # One subscriber gets a /64 network: changing address inside it costs nothing.
    assert client_of("2001:db8:1:2::1") == client_of("2001:db8:1:2:ffff::9")
    assert client_of("2001:db8:1:2::1") != client_of("2001:db8:1:3::1")


def test_ipv4_addresses_are_each_a_client_and_a_mapped_one_is_its_ipv4_address() -> None:
    assert client_of("203.0.113.9") != client_of("203.0.113.10")
    assert client_of("::ffff:203.0.113.9") == client_of("203.0.113.9")


def test_the_same_address_written_two_ways_is_one_client() -> None:
    assert client_of("2001:DB8:0:0:1::1") == client_of("2001:db8::1:0:0:1")


@given(st.lists(st.builds(lambda _: new_follow_up_code(), st.integers()), min_size=1))
def test_a_code_falls_in_one_of_16_groups_and_always_the_same(codes: list[str]) -> None:
    for code in codes:
        assert code_group(code) == code_group(code)
        assert code_group(code) in set("0123456789abcdef")


def test_no_proxy_is_trusted_unless_configured() -> None:
    assert PortalSettings(http_port=0).trusted_proxies == ()


def test_trusted_proxies_are_read_comma_separated_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("QINGLIAN_TRUSTED_PROXIES", "10.0.0.5, 172.18.0.0/16,2001:db8::/48")

    assert PortalSettings(http_port=0).trusted_proxies == (
        "10.0.0.5",
        "172.18.0.0/16",
        "2001:db8::/48",
    )


@pytest.mark.parametrize("value", ["*", "proxy.hospital.local", "10.0.0.300", "10.0.0.5,,x"])
def test_a_trusted_proxy_that_is_no_address_stops_the_service_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("QINGLIAN_TRUSTED_PROXIES", value)

    with pytest.raises(ValidationError, match="QINGLIAN_TRUSTED_PROXIES"):
        PortalSettings(http_port=0)
