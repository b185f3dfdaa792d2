"""Flow facts: secrets found in monitor signals."""

from __future__ import annotations

from hazmat.policy.flow import FlowState

CANARY = "HZMCANARY-7be1c0ffee00112233445566"


def test_a_canary_lower_cased_into_a_dns_name_is_still_found() -> None:
    flow = FlowState({"canary:exfil": CANARY})
    sig = {"type": "dns", "name": CANARY.lower() + ".exfil.example", "qtype": "A"}
    out = flow.after(None, "", [sig])
    assert "canary:exfil (literal, any case)" in out["secret_in_signal"]
    hexed = CANARY.encode().hex()
    mixed = {"type": "network", "proto": "http", "payload": hexed[:10].upper() + hexed[10:]}
    assert "hex, any case" in flow.after(None, "", [mixed])["secret_in_signal"]


def test_case_does_not_make_base64_match_and_other_text_stays_clean() -> None:
    flow = FlowState({"canary:exfil": CANARY})
    assert flow.after(None, "", [{"type": "dns", "name": "pypi.org"}]) == {}
    assert flow.find_secret_any_case("hzmcanary-7be1c0ffee00112233445566") is not None
    assert flow.find_secret("hzmcanary-7be1c0ffee00112233445566") is None
