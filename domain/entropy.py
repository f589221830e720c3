"""How guessable a secret is: an estimate of its entropy, and the check settings apply to
every secret outside development. Pure functions, no I/O.

Length and a list of known values let 36 times `a` through. The estimate here counts what a secret
looks like, not how long it is: the Shannon entropy of its characters times their number (a
single repeated character: 0 bits), taken on the characters and on the steps between them (a
counting run such as `abcdef…` or `0123…`: a handful of bits), and discounted by how much better
the secret compresses than the same characters scrambled (a repeated word or pattern). Random
values pass with room to spare: `openssl rand -hex 32` ≈ 240 bits by this estimate,
`openssl rand -base64 48` ≈ 330, `secrets.token_urlsafe(32)` ≈ 210 (never below ~175 in 20,000
draws). It is an estimate of structure, not a proof of randomness: a long sentence passes; use
a generator.
"""

from __future__ import annotations

import itertools
import math
import random
import zlib
from collections import Counter
from collections.abc import Sequence

# A signing or HMAC key: what a generator gives in 22 random base64 characters.
MIN_SECRET_BITS = 128.0
# A 32-byte key scores at most ~155 here (32 symbols: 5 bits each at best); random keys never
# scored below ~128 in 200,000 draws. This bar refuses what is plainly not random (one byte
# repeated, a counting sequence, a short pattern repeated), not a random key.
MIN_KEY_BITS = 64.0


def _shannon_bits(symbols: Sequence[int]) -> float:
    """Shannon entropy of the symbols' frequencies, times their number."""
    n = len(symbols)
    return -sum(count * math.log2(count / n) for count in Counter(symbols).values()) if n else 0.0


def estimated_bits(secret: str | bytes) -> float:
    """An estimate of the bits of entropy in `secret` (characters of a string, or bytes)."""
    symbols = [ord(c) for c in secret] if isinstance(secret, str) else list(secret)
    if len(symbols) < 2:
        return 0.0
    steps = [b - a for a, b in itertools.pairwise(symbols)]
    bits = min(_shannon_bits(symbols), _shannon_bits(steps))
    scrambled = symbols.copy()
    random.Random(len(symbols)).shuffle(scrambled)  # seeded: the same answer every time
    packed = len(zlib.compress(_encode(symbols), 9)) / len(zlib.compress(_encode(scrambled), 9))
    return max(0.0, bits * min(1.0, packed))


def _encode(symbols: list[int]) -> bytes:
    return "".join(map(chr, symbols)).encode("utf-8", "surrogatepass")


def strong_secret(secret: str | bytes, min_bits: float = MIN_SECRET_BITS) -> bool:
    return estimated_bits(secret) >= min_bits


def require_strong_secret(
    name: str, secret: str | bytes, min_bits: float = MIN_SECRET_BITS
) -> None:
    """ValueError naming the variable `name` when `secret` looks too guessable."""
    bits = estimated_bits(secret)
    if bits < min_bits:
        raise ValueError(
            f"{name} is too guessable: about {bits:.0f} bits of entropy by estimate, "
            f"{min_bits:.0f} needed (repeated or sequential characters, or a repeated word); "
            "use a random value, e.g. `openssl rand -hex 32`"
        )
