"""Crypto mining: known miners, stratum pools, mining algorithms and wallet addresses."""

from __future__ import annotations

import re

from hazmat.policy.detectors._common import Facts, gated, search

MINERS = frozenset(
    {
        "xmrig",
        "xmrig-notls",
        "xmr-stak",
        "xmr-stak-cpu",
        "minerd",
        "cpuminer",
        "cpuminer-multi",
        "cpuminer-opt",
        "cgminer",
        "bfgminer",
        "ethminer",
        "t-rex",
        "nbminer",
        "phoenixminer",
        "lolminer",
        "gminer",
        "nanominer",
        "teamredminer",
        "ccminer",
        "sgminer",
        "claymore",
        "nheqminer",
        "srbminer",
        "srbminer-multi",
        "wildrig",
        "kawpowminer",
        "bminer",
        "xmr-node-proxy",
        "miner",
        "xmrminer",
        "kinsing",
        "kdevtmpfsi",
        "moneroocean",
        "c3pool",
        "lolmine",
        "excavator",
        "z-enemy",
        "trex",
    }
)
_BLOB = gated(
    re.compile(
        r"(?i)\bstratum\d?\+(?:tcp|ssl|tls|ws)://|\b(?:"
        + "|".join(re.escape(m) for m in sorted(MINERS) if m not in ("miner", "trex"))
        + r")\b|"
        r"\b(?:minexmr|supportxmr|moneroocean|nanopool|2miners|f2pool|ethermine|hashvault|nicehash|"
        r"miningpoolhub|c3pool|herominers|unmineable|xmrpool|dwarfpool|viabtc|antpool|slushpool|poolin|"
        r"prohashing|zpool|minergate|monerohash|coinhive|crypto-?loot|webminepool|xmrig|kryptex|"
        r"gulf\.moneroocean|pool\.hashvault|zergpool|mining-dutch|woolypooly|flockpool|kryptex|"
        r"rplant|minerpool)\b|--donate-level\b|--cpu-max-threads-hint|"
        r"\b(?:-a|--algo)[= ](?:rx/0|rx/wow|"
        r"cn/r|cn/\w+|cryptonight\w*|randomx|ethash|etchash|kawpow|autolykos2?|equihash\w*|scrypt|x11|"
        r"sha256d|lyra2\w*|ghostrider|verushash|argon2\w*|progpow)\b|"
        r"--coin[= ](?:xmr|monero|etc|eth|rvn|"
        r"btc|zec|erg|kas|ravencoin)\b|\bcryptonight\b|"
        r"\brandomx\b|\bminer\.start\s*\(|CoinHive\.Anonymous|"
        r"(?:\s-o\s*|--url[= ]|--pool[= ]|-pool\s+)"
        r"\S*(?:pool|xmr|mine|hash|nano|stratum)\S*:\d{2,5}\b"
    )
)

_WALLET = re.compile(r"\b4[0-9AB][1-9A-HJ-NP-Za-km-z]{93}\b")


def detect(f: Facts) -> str | None:
    """A miner binary, a stratum URL, a pool host, mining flags or a Monero wallet."""
    for c in f.commands:
        if c.name in MINERS and c.name not in ("miner",):
            return f"runs miner {c.name}"
    hit = search(_BLOB, f.blob) or search(_WALLET, f.blob)
    if hit:
        return f"mining: {hit}"
    return None
