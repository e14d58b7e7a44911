"""Numeric literals of the text format (spec text/values.rst): integers
and floats as the engine's unsigned bit patterns, rounded exactly (no host
float arithmetic, so no NaN payload or f32 rounding is lost).  Shared by
the .wast parser and the command line's argument parsing, which must not
need the .wast grammar."""

import re
from fractions import Fraction

_FLOAT_FORMAT = {32: (23, 8), 64: (52, 11)}
_DIGITS = re.compile(r'[0-9](?:_?[0-9])*\Z')
_HEXDIGITS = re.compile(r'[0-9a-fA-F](?:_?[0-9a-fA-F])*\Z')


class LiteralError(ValueError):
    pass


def _split_sign(text):
    if text[:1] in '+-':
        return text[0] == '-', text[1:]
    return False, text


def parse_int(text, bits):
    """Integer literal -> unsigned bit pattern of width ``bits``.

    Accepts the text format's ranges: signed or unsigned (−2^(N−1) … 2^N−1),
    so ``-1`` and ``0xffffffff`` both give 0xffffffff.
    """
    neg, body = _split_sign(text)
    if body[:2] in ('0x', '0X'):
        digits = body[2:]
        if not _HEXDIGITS.match(digits):
            raise LiteralError(f'bad integer literal {text!r}')
        value = int(digits.replace('_', ''), 16)
    else:
        if not _DIGITS.match(body):
            raise LiteralError(f'bad integer literal {text!r}')
        value = int(body.replace('_', ''))
    if neg:
        if value > 1 << (bits - 1):
            raise LiteralError(f'integer constant out of range {text!r}')
        value = -value
    elif value >= 1 << bits:
        raise LiteralError(f'integer constant out of range {text!r}')
    return value & ((1 << bits) - 1)


def _round_to_float(x, bits):
    """Exact positive rational -> bit pattern (sign clear), round to nearest even.

    Subnormals come out of the same formula: below the normal range the
    significand is counted in units of the smallest subnormal, and a carry
    into 2^m encodes the smallest normal number, as the layout wants.
    """
    m, e = _FLOAT_FORMAT[bits]
    bias = (1 << (e - 1)) - 1
    if x == 0:
        return 0
    n, d = x.numerator, x.denominator
    exp = n.bit_length() - d.bit_length()          # 2^exp <= x < 2^(exp+2)
    if (n << max(0, -exp)) < (d << max(0, exp)):   # x < 2^exp
        exp -= 1
    emin = 1 - bias
    if exp < emin:
        exp = emin - 1                             # units of the smallest subnormal
    shift = exp - m if exp >= emin else emin - m
    # q = round_half_even(x / 2^shift)
    if shift >= 0:
        num, den = n, d << shift
    else:
        num, den = n << -shift, d
    q, r = divmod(num, den)
    if 2 * r > den or (2 * r == den and q & 1):
        q += 1
    if exp < emin:
        return q                                   # subnormal (or carried into min normal)
    if q == 1 << (m + 1):
        q >>= 1
        exp += 1
    if exp > bias:
        raise LiteralError('constant out of range')
    return ((exp + bias) << m) | (q - (1 << m))


def parse_float(text, bits):
    """Float literal (decimal, hex, inf, nan, nan:0x…) -> bit pattern."""
    m, e = _FLOAT_FORMAT[bits]
    neg, body = _split_sign(text)
    sign = (1 << (bits - 1)) if neg else 0
    exp_all = ((1 << e) - 1) << m
    if body == 'inf':
        return sign | exp_all
    if body == 'nan':
        return sign | exp_all | (1 << (m - 1))
    if body.startswith('nan:0x'):
        digits = body[6:]
        if not _HEXDIGITS.match(digits):
            raise LiteralError(f'bad NaN literal {text!r}')
        payload = int(digits.replace('_', ''), 16)
        if not 1 <= payload < (1 << m):
            raise LiteralError(f'NaN payload out of range {text!r}')
        return sign | exp_all | payload
    if body[:2] in ('0x', '0X'):
        mt = re.match(r'([0-9a-fA-F_]*)(?:\.([0-9a-fA-F_]*))?(?:[pP]([+-]?[0-9_]+))?\Z', body[2:])
        if not mt or not mt.group(1) or not _HEXDIGITS.match(mt.group(1)) or \
                (mt.group(2) and not _HEXDIGITS.match(mt.group(2))):
            raise LiteralError(f'bad float literal {text!r}')
        whole, frac, power = mt.group(1), mt.group(2) or '', mt.group(3)
        digits = (whole + frac).replace('_', '')
        mantissa = int(digits, 16)
        exp2 = (int(power.replace('_', '')) if power else 0) - 4 * len(frac.replace('_', ''))
        value = _scaled(mantissa, 2, exp2, bits)
    else:
        mt = re.match(r'([0-9_]*)(?:\.([0-9_]*))?(?:[eE]([+-]?[0-9_]+))?\Z', body)
        if not mt or not mt.group(1) or not _DIGITS.match(mt.group(1)) or \
                (mt.group(2) and not _DIGITS.match(mt.group(2))):
            raise LiteralError(f'bad float literal {text!r}')
        whole, frac, power = mt.group(1), mt.group(2) or '', mt.group(3)
        digits = (whole + frac).replace('_', '')
        mantissa = int(digits)
        exp10 = (int(power.replace('_', '')) if power else 0) - len(frac.replace('_', ''))
        value = _scaled(mantissa, 10, exp10, bits)
    return sign | value


def _scaled(mantissa, base, exp, bits):
    """Round mantissa * base^exp, short-cutting absurd exponents (exactly)."""
    if mantissa == 0:
        return 0
    # Binary magnitude estimate; far outside the format it's 0 or out of range.
    mag = mantissa.bit_length() + exp * (1 if base == 2 else 3.33)
    if mag > 2000:
        raise LiteralError('constant out of range')
    if mag < -2000:
        return 0
    x = Fraction(mantissa) * Fraction(base) ** exp
    return _round_to_float(x, bits)
