"""safe_next, password hashing and policy, TOTP codes and the QR code, without pages."""
from __future__ import annotations

import time

import pyotp
import pytest
from argon2 import PasswordHasher

from feedback_app.auth import passwords, totp
from feedback_app.web.access import safe_next


@pytest.mark.parametrize("target", ["/staff/", "/staff/submissions/HP2026-000001?tab=notes", "/track"])
def test_safe_next_keeps_paths_of_this_site(target):
    assert safe_next(target) == target


@pytest.mark.parametrize(
    "target",
    [
        None,
        "",
        "//evil.example",
        "//evil.example/staff/",
        "///evil.example",
        "/\\evil.example",
        "\\\\evil",
        "\\/evil.example",
        "https://evil.example",
        "https://evil.example/staff/",
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "staff/",
        " /staff/",
        "/staff/\x00",
        "/staff/\nLocation: https://evil.example",
        "/\t/evil.example",
    ],
)
def test_safe_next_refuses_other_hosts_and_schemes(target):
    assert safe_next(target) is None


def test_hashes_are_argon2id_and_verify():
    h = passwords.hash_password("correct horse battery")
    assert h.startswith("$argon2id$")
    assert passwords.verify_password(h, "correct horse battery")
    assert not passwords.verify_password(h, "correct horse batterY")
    assert not passwords.verify_password("not a hash", "correct horse battery")
    assert not passwords.needs_rehash(h)


def test_full_width_input_matches_the_same_password():
    h = passwords.hash_password("correct horse battery")
    assert passwords.verify_password(h, "ｃｏｒｒｅｃｔ ｈｏｒｓｅ ｂａｔｔｅｒｙ")


def test_older_parameters_need_a_rehash():
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash("correct horse battery")
    assert passwords.verify_password(weak, "correct horse battery")
    assert passwords.needs_rehash(weak)


@pytest.mark.parametrize(
    "password, message",
    [
        ("", "请填写密码"),
        ("   ", "请填写密码"),
        ("short pass1", "密码至少 12 个字符，目前 11 个字符"),
        ("x" * 257, "密码不超过 256 个字符"),
        ("zhang.san.office", "密码不能与用户名相同"),
    ],
)
def test_password_policy(password, message):
    assert passwords.password_problem(password, username="zhang.san.office") == message


def test_password_policy_accepts_twelve_characters_and_chinese():
    assert passwords.password_problem("abcdefghijkl") is None
    assert passwords.password_problem("巡察整改监督意见受理服务密码") is None


def test_codes_of_this_previous_and_next_step_match_others_do_not():
    secret = pyotp.random_base32()
    now = 1_700_000_000
    step = now // 30
    code = pyotp.TOTP(secret).at(now)
    assert totp.matching_step(secret, code, at=now) == step
    assert totp.matching_step(secret, pyotp.TOTP(secret).at(now - 30), at=now) == step - 1
    assert totp.matching_step(secret, pyotp.TOTP(secret).at(now + 30), at=now) == step + 1
    assert totp.matching_step(secret, pyotp.TOTP(secret).at(now - 60), at=now) is None
    assert totp.matching_step(secret, f" {code[:3]} {code[3:]} ", at=now) == step
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in code)
    assert totp.matching_step(secret, full_width, at=now) == step
    for bad in ("", "12345", "1234567", "abcdef", "٣٣٣٣٣٣"):
        assert totp.matching_step(secret, bad, at=now) is None


def test_provisioning_uri_names_the_issuer_and_account():
    secret = pyotp.random_base32()
    uri = totp.provisioning_uri(secret, "li.shenhe")
    parsed = pyotp.parse_uri(uri)
    assert parsed.issuer == "巡察整改监督意见"
    assert parsed.name == "li.shenhe"
    assert parsed.secret == secret
    assert parsed.digits == 6 and parsed.interval == 30


def test_secret_grouped_by_four():
    assert totp.grouped("ABCDEFGHIJKLMNOPQR") == "ABCD EFGH IJKL MNOP QR"


def test_qr_code_is_inline_svg_without_style_or_external_reference():
    svg = str(totp.qr_svg(totp.provisioning_uri(pyotp.random_base32(), "li.shenhe")))
    assert svg.startswith("<svg ")
    assert 'role="img"' in svg and "<title>" in svg
    assert "style" not in svg
    assert "http" not in svg and "href" not in svg
    assert "<script" not in svg


def test_secret_is_160_bits_of_base32():
    secret = totp.new_secret()
    assert len(secret) == 32 and set(secret) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    assert totp.current_code(secret, time.time()) == pyotp.TOTP(secret).now()
