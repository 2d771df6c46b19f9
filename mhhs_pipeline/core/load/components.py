"""Intra-day shapes of each load component, vectorised over MPANs.

Every function returns half-hour energies [rows, H] for the window's H = 48 x n_days UTC
half hours, from daily energies [rows, n_days] (kWh) and per-MPAN traits. Behaviour
follows the *local clock* (``grid.local_slot``), so BST shifts it in UTC; randomness comes
from :mod:`mhhs_pipeline.core.streams` keyed by (seed, MPAN, stream, half-hour ordinal).

- ``household``: a single home -- a standby floor, activity load with correlated lognormal
  noise, discrete appliance events (kettle, shower, oven, washing) and lighting after dark.
  The floor is exact; the rest is scaled so each day sums to its energy.
- ``site``: a non-domestic site -- flat base + opening-hours shape with noise and process
  peaks; HVAC energy on the occupied hours.
- ``shaped``: direct electric heating and heat pumps (flatter on cold days; heat pumps
  cycle on mild days).
- ``blocks``: constant-power blocks (EV charging, storage and immersion heaters on the
  night window, heat-pump hot water) that may run past midnight into the next days.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mhhs_pipeline.core import streams
from mhhs_pipeline.core.load.archetypes import CompiledModel
from mhhs_pipeline.core.load.daily import irwin_hall_normal, top16_uniform
from mhhs_pipeline.core.load.weather import local_to_utc_index

_U16 = np.uint64(0xFFFF)
_INV24 = 1.0 / float(1 << 24)


@dataclass(frozen=True)
class Window:
    """The half hours of a window, and what every component needs to know about them."""

    n_days: int
    local_slot: np.ndarray  # [H] local clock half hour 0..47
    day_type: np.ndarray  # [8, H] day type of the local date, per day variant
    hh: np.ndarray  # [H] half-hour ordinals (uint64)
    lighting: np.ndarray  # [N_GSP, H] lighting need, each UTC day summing to 1

    @property
    def H(self) -> int:
        return self.n_days * 48


def _normalise(w: np.ndarray, energy: np.ndarray) -> np.ndarray:
    """Scale [r, H] weights so each UTC day sums to ``energy`` [r, n_days] (0 where weights are 0).

    ``w`` must be a C-contiguous array of the caller's own: it is scaled in place and returned
    (the day sums read it in that layout, so they add up in the same order as always)."""
    r = w.shape[0]
    w3 = w.reshape(r, energy.shape[1], 48)
    tot = w3.sum(axis=2, keepdims=True)
    k = np.where(tot > 0, energy[:, :, None] / np.where(tot > 0, tot, 1.0), 0.0)
    w3 *= k
    return w


def _lognormal_noise(z: np.ndarray, sigma) -> np.ndarray:
    """``exp(sigma z - sigma^2 / 2)`` (mean 1) as a new array, without further temporaries."""
    out = z * sigma
    out -= 0.5 * sigma * sigma
    np.exp(out, out=out)
    return out


def _shift_slots(win: Window, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Local clock slots shifted per row, tabulated per distinct shift: ([n_shift, H], row -> shift)."""
    shifts, shift_of = np.unique(shift, return_inverse=True)
    return (win.local_slot[None, :].astype(np.int64) + shifts[:, None]) % 48, shift_of.reshape(-1)


def correlated_noise(key: np.uint64, entity: np.ndarray, hh: np.ndarray, rho: float) -> tuple[np.ndarray, np.ndarray]:
    """(z [r, H] approx. standard normal with lag-1 correlation ``rho``, the raw draws [r, H]).

    ``z_t = (e_t + c e_(t-1)) / sqrt(1 + c^2)`` with ``c / (1 + c^2) = rho``: the draw before the
    window is keyed by its own half-hour ordinal, so a window regenerates alone.
    """
    hh_ext = np.concatenate([hh[:1] - np.uint64(1), hh])
    u = streams.random_u64(key, entity[:, None], hh_ext[None, :])
    e = irwin_hall_normal(u)
    if rho <= 0:
        return e[:, 1:], u[:, 1:]
    c = (1.0 - np.sqrt(max(1.0 - 4.0 * rho * rho, 0.0))) / (2.0 * rho)
    z = e[:, :-1] * c  # c e_(t-1) + e_t: the same sum as e_t + c e_(t-1)
    z += e[:, 1:]
    z /= np.sqrt(1.0 + c * c)
    return z, u[:, 1:]


_BLOCK_VALUES = 1 << 16  # half-hour values per block of rows: the temporaries stay cache-sized


def _row_blocks(r: int, H: int) -> list[slice]:
    """Row blocks of about ``_BLOCK_VALUES`` values. Rows are independent (their own streams,
    their own days), so a block computes exactly what the whole would; a market-scale unit
    (1,000 MPANs x 28 days) otherwise spends its time allocating and faulting in
    multi-megabyte temporaries."""
    step = max(1, _BLOCK_VALUES // max(H, 1))
    return [slice(i, min(i + step, r)) for i in range(0, r, step)]


def household(seed: int, cm: CompiledModel, win: Window, keys: np.ndarray, arch: np.ndarray, variant: np.ndarray, gsp: np.ndarray,
              tr_rows, energy: np.ndarray, light: np.ndarray, keep: np.ndarray | None = None,
              keep_draws: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Single-home half hours [r, H]; also the correlated noise z [len(keep), H] of the rows
    ``keep`` and its raw draws [len(keep_draws), H] of the rows ``keep_draws`` (sorted row
    indices; all rows when None, ``keep`` when only that is given), which heating reuses."""
    dom = cm.model.domestic
    r = len(keys)
    H = win.H
    n_days = win.n_days
    keep_draws = keep_draws if keep_draws is not None else keep
    keep = np.arange(r) if keep is None else np.asarray(keep, dtype=np.int64)
    keep_draws = np.arange(r) if keep_draws is None else np.asarray(keep_draws, dtype=np.int64)
    # The local-clock tables depend on a row only through (day variant, shift) and its archetype
    # (activity) or appliance ownership (events): each distinct combination is tabulated once
    # and its [H] row gathered, instead of computing gather indices for every half hour.
    slot_tab, shift_of = _shift_slots(win, tr_rows.shift)
    vs, vs_of = np.unique(variant * len(slot_tab) + shift_of, return_inverse=True)
    vs_of = vs_of.reshape(-1)
    dtype_vs = win.day_type[vs // len(slot_tab)] if r else np.zeros((0, H), dtype=np.int8)  # [n_vs, H]
    slot_vs = slot_tab[vs % len(slot_tab)] if r else np.zeros((0, H), dtype=np.int64)
    aa = arch * 2 + tr_rows.away
    act_key, act_of = np.unique(aa * len(vs) + vs_of, return_inverse=True)
    act_of = act_of.reshape(-1)
    act_vs = act_key % len(vs) if r else act_key
    act_tab = cm.activity.reshape(-1)[((act_key // len(vs))[:, None] * 3 + dtype_vs[act_vs]) * 48 + slot_vs[act_vs]]
    delay = dom.weekend_morning_delay_halfhours
    pslot_vs = np.where((dtype_vs != 0) & (slot_vs < 26), np.maximum(slot_vs - delay, 0), slot_vs) if delay else slot_vs
    p_key, p_of = np.unique(tr_rows.combo * len(vs) + vs_of, return_inverse=True)
    p_of = p_of.reshape(-1)
    p_vs = p_key % len(vs) if r else p_key
    p_tab = cm.combo_p[(p_key // len(vs))[:, None], pslot_vs[p_vs]]  # [n_combo_vs, H] event chance
    cdf = cm.combo_cdf.reshape(-1, cm.combo_cdf.shape[-1])  # [combo * 48 + slot, K]
    floor = np.minimum(tr_rows.standby_kwh[:, None], dom.standby_max_share * energy / 48.0)  # [r, D]
    expected_events = (tr_rows.event_scale * cm.combo_daily_kwh[tr_rows.combo])[:, None]
    rest = np.maximum(energy - 48.0 * floor - expected_events - light, dom.activity_min_share * energy)
    day_energy = energy - 48.0 * floor
    key_hh = streams.stream_key(seed, "load.hh")
    key_event = streams.stream_key(seed, "load.event")

    out = np.empty((r, H))
    z_keep = np.empty((len(keep), H))
    u_keep = np.empty((len(keep_draws), H), dtype=np.uint64)
    for sl in _row_blocks(r, H):
        b = sl.stop - sl.start
        z, u = correlated_noise(key_hh, keys[sl], win.hh, dom.activity_correlation)
        k0, k1 = np.searchsorted(keep, [sl.start, sl.stop])
        z_keep[k0:k1] = z[keep[k0:k1] - sl.start]
        k0, k1 = np.searchsorted(keep_draws, [sl.start, sl.stop])
        u_keep[k0:k1] = u[keep_draws[k0:k1] - sl.start]
        # Appliance events: at most one per half hour; which appliance and its size only where one happens.
        ue = streams.random_u64(key_event, keys[sl][:, None], win.hh[None, :])
        p = p_tab[p_of[sl]]
        p *= tr_rows.event_scale[sl][:, None]
        x = (ue >> np.uint64(40)).astype(np.float64)
        x *= _INV24
        hit = np.flatnonzero(x < p)  # flat [b * H] positions, row-major like np.nonzero
        # w = rest * activity * noise + events + light * lighting, built in place in that order.
        w = out[sl]
        np.take(act_tab, act_of[sl], axis=0, out=w)
        w3 = w.reshape(b, n_days, 48)
        w3 *= rest[sl][:, :, None]
        w *= _lognormal_noise(z, dom.activity_sigma)
        if len(hit):
            ri = hit // H
            ti = hit - ri * H
            ri += sl.start
            uh = ue.reshape(-1)[hit]
            pick = (uh & _U16).astype(np.float64) / 65536.0
            # Appliance = how many cumulative choice levels lie below the pick, counted one
            # level at a time (K is small, the events are many).
            cell = tr_rows.combo[ri] * 48 + pslot_vs[vs_of[ri], ti]
            app = np.zeros(len(hit), dtype=np.int64)
            for k in range(cdf.shape[1]):
                app += cdf[:, k][cell] < pick
            np.minimum(app, cdf.shape[1] - 1, out=app)
            frac = ((uh >> np.uint64(16)) & _U16).astype(np.float64) / 65536.0
            # Adding the events where they happen equals adding a zero-filled events array (w >= +0).
            w.reshape(-1)[hit] += cm.appliance_kwh_lo[app] + (cm.appliance_kwh_hi[app] - cm.appliance_kwh_lo[app]) * frac
        lit = win.lighting[gsp[sl]]
        lit.reshape(b, n_days, 48)[...] *= light[sl][:, :, None]
        w += lit
        _normalise(w, day_energy[sl])
        w3 += floor[sl][:, :, None]
    return out, z_keep, u_keep


def site(seed: int, cm: CompiledModel, win: Window, keys: np.ndarray, arch: np.ndarray, variant: np.ndarray, tr_rows,
         energy: np.ndarray, hvac: np.ndarray) -> np.ndarray:  # fmt: skip
    """Non-domestic half hours [r, H]: site load plus HVAC on occupied hours."""
    r = len(keys)
    slot_tab, shift_of = _shift_slots(win, np.clip(tr_rows.shift, -1, 1))
    # Gather indices per distinct (archetype, day variant, shift), then rows of them.
    key, key_of = np.unique((arch * 8 + variant) * len(slot_tab) + shift_of, return_inverse=True)
    a_k, v_k, s_k = key // (8 * len(slot_tab)), (key // len(slot_tab)) % 8, key % len(slot_tab)
    flat_tab = (a_k[:, None] * 3 + win.day_type[v_k]) * 48 + slot_tab[s_k] if r else np.zeros((0, win.H), dtype=np.int64)
    flat = flat_tab[key_of.reshape(-1)]
    base = tr_rows.base_fraction[:, None]
    z, u = correlated_noise(streams.stream_key(seed, "load.hh"), keys, win.hh, 0.3)
    noise = _lognormal_noise(z, cm.halfhour_sigma[arch][:, None])
    peaks = np.where(top16_uniform(u) < cm.event_rate[arch][:, None], cm.event_size[arch][:, None], 0.0)
    load = cm.site_shape.reshape(-1)[flat]
    load *= 1.0 - base
    load += base
    load *= noise
    load += peaks
    out = _normalise(load, energy)
    if hvac.any():
        occ = cm.occupied_shape.reshape(-1)[flat]
        occ *= noise
        out += _normalise(occ, hvac)
    return out


def shaped(cm: CompiledModel, win: Window, table: np.ndarray, shift: np.ndarray, energy: np.ndarray, hdd: np.ndarray,
           z: np.ndarray, sigma: float, flattening: float, cycle_u: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """Heating half hours [r, H] from a local-clock shape (by local slot shifted by each row's
    ``shift`` half hours), flatter on cold days, with noise.

    ``cycle_u`` (uniforms [r, H]) switches a heat pump off for part of mild days.
    """
    h = cm.model.heating
    r, n_days = energy.shape
    beta = (flattening * np.clip(hdd / h.cold_day_hdd, 0.0, 1.0))[:, :, None]  # per day, broadcast over its 48
    duty = np.clip(hdd / h.heat_pump_mild_hdd, 0.25, 1.0)[:, :, None] if cycle_u is not None and h.heat_pump_mild_hdd > 0 else None
    slot_tab, shift_of = _shift_slots(win, shift)
    shape_tab = table[slot_tab]  # the shape's row per distinct shift
    out = np.empty((r, n_days * 48))
    for sl in _row_blocks(r, n_days * 48):  # rows are independent: cache-sized blocks
        w = out[sl]
        np.take(shape_tab, shift_of[sl], axis=0, out=w)
        w3 = w.reshape(-1, n_days, 48)
        w3 *= 1.0 - beta[sl]
        w3 += beta[sl]
        w *= _lognormal_noise(z[sl], sigma)
        if duty is not None:
            w3[cycle_u[sl].reshape(-1, n_days, 48) >= duty[sl]] *= 0.03  # elsewhere x 1.0, which changes nothing
        _normalise(w, energy[sl])
    return out


def block_starts(local_slot: np.ndarray, gmt: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Start [r, len(days)] in half hours from 00:00 UTC of each day of a block that starts at
    local clock ``local_slot`` in the night after (slot < 24: on the next local date) or the
    evening of (slot >= 24) that day; a GMT switching clock ignores summer time."""
    out = np.empty((len(local_slot), len(days)), dtype=np.int64)
    for s in np.unique(local_slot):
        rows = local_slot == s
        nxt = s < 24
        utc = _utc_index(days + 1, int(s)) + 48 if nxt else _utc_index(days, int(s))
        plain = int(s) + (48 if nxt else 0)
        out[rows] = np.where(gmt[rows][:, None], plain, utc[None, :])
    return out


_UTC_INDEX: dict[tuple[bytes, int], np.ndarray] = {}
_UTC_INDEX_MAX = 512


def _utc_index(days: np.ndarray, local_slot: int) -> np.ndarray:
    """``local_to_utc_index``, cached per (days, slot): pandas' time-zone conversion costs far
    more than the blocks themselves, and every unit asks for the same few slots and days."""
    days = np.asarray(days, dtype=np.int64)
    key = (days.tobytes(), local_slot)
    hit = _UTC_INDEX.get(key)
    if hit is None:
        if len(_UTC_INDEX) >= _UTC_INDEX_MAX:
            _UTC_INDEX.clear()
        hit = local_to_utc_index(days, local_slot)
        hit.setflags(write=False)
        _UTC_INDEX[key] = hit
    return hit


def blocks(start: np.ndarray, energy: np.ndarray, power: np.ndarray, max_len: int, lookback: int, n_days: int, limit: np.ndarray) -> np.ndarray:
    """Constant-power blocks [r, n_days * 48] for the window.

    ``start``, ``energy``, ``power`` are [r, lookback + n_days] (per day of the block: start in
    half hours from that day's 00:00 UTC, energy kWh, kWh per half hour). The block of day
    ``d`` delivers ``min(power, energy - k * power)`` in its k-th half hour, so blocks started
    before the window reach into it exactly as they would in a longer run. ``limit`` [days]
    is the half hour (from each day's 00:00 UTC) a block must end by -- the end of the
    calendar year, so each year keeps exactly the energy its normaliser gave it: a block
    that would cross 1 January starts earlier instead.
    """
    r, nd = energy.shape
    span = (nd + 4) * 48
    out = np.zeros(r * span)
    p = np.broadcast_to(power, energy.shape)
    length = np.minimum(np.ceil(energy / np.where(p > 0, p, 1.0)), max_len).astype(np.int64)
    start = np.minimum(start, limit[None, :] - length)
    pos0 = (np.arange(r)[:, None] * span + np.arange(nd)[None, :] * 48 + start).reshape(-1)
    e = energy.reshape(-1)
    p = p.reshape(-1)
    live = e > 0
    pos0, e, p = pos0[live], e[live], p[live]
    safe_p = np.where(p > 0, p, 1.0)
    n_steps = int(min(max_len, np.ceil((e / safe_p).max()))) if len(e) else 0
    for k in range(n_steps):
        v = np.clip(e - k * p, 0.0, p)
        if k == max_len - 1:
            v = np.maximum(e - k * p, 0.0)  # whatever is left goes in the last half hour
        np.add.at(out, pos0 + k, v)
    out = out.reshape(r, span)
    return out[:, lookback * 48 : (lookback + n_days) * 48]
