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


def _per_day(x: np.ndarray) -> np.ndarray:
    """[r, n_days] -> [r, H] by repeating each day 48 times."""
    return np.repeat(x, 48, axis=1)


def _normalise(w: np.ndarray, energy: np.ndarray) -> np.ndarray:
    """Scale [r, H] weights so each UTC day sums to ``energy`` [r, n_days] (0 where weights are 0)."""
    r = w.shape[0]
    w3 = w.reshape(r, energy.shape[1], 48)
    tot = w3.sum(axis=2, keepdims=True)
    k = np.where(tot > 0, energy[:, :, None] / np.where(tot > 0, tot, 1.0), 0.0)
    return (w3 * k).reshape(r, -1)


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
    return (e[:, 1:] + c * e[:, :-1]) / np.sqrt(1.0 + c * c), u[:, 1:]


def household(seed: int, cm: CompiledModel, win: Window, keys: np.ndarray, arch: np.ndarray, variant: np.ndarray, gsp: np.ndarray,
              tr_rows, energy: np.ndarray, light: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Single-home half hours [r, H]; also the correlated noise z and its raw draws (reused by heating)."""
    dom = cm.model.domestic
    r = len(keys)
    slot = (win.local_slot[None, :].astype(np.int64) + tr_rows.shift[:, None]) % 48
    dtype = win.day_type[variant][:, :] if r else np.zeros((0, win.H), dtype=np.int8)
    aa = arch * 2 + tr_rows.away
    act = cm.activity.reshape(-1)[(aa[:, None] * 3 + dtype) * 48 + slot]
    z, u = correlated_noise(streams.stream_key(seed, "load.hh"), keys, win.hh, dom.activity_correlation)
    sig = dom.activity_sigma
    noise = np.exp(sig * z - 0.5 * sig * sig)
    # Appliance events: at most one per half hour; which appliance and its size only where one happens.
    ue = streams.random_u64(streams.stream_key(seed, "load.event"), keys[:, None], win.hh[None, :])
    delay = dom.weekend_morning_delay_halfhours
    pslot = np.where((dtype != 0) & (slot < 26), np.maximum(slot - delay, 0), slot) if delay else slot
    p = cm.combo_p[tr_rows.combo[:, None], pslot] * tr_rows.event_scale[:, None]
    hit = (ue >> np.uint64(40)).astype(np.float64) * _INV24 < p
    ri, ti = np.nonzero(hit)
    events = np.zeros((r, win.H))
    if len(ri):
        uh = ue[ri, ti]
        pick = (uh & _U16).astype(np.float64) / 65536.0
        cdf = cm.combo_cdf[tr_rows.combo[ri], pslot[ri, ti]]  # [e, K]
        app = np.minimum((cdf < pick[:, None]).sum(axis=1), cdf.shape[1] - 1)
        frac = ((uh >> np.uint64(16)) & _U16).astype(np.float64) / 65536.0
        events[ri, ti] = cm.appliance_kwh_lo[app] + (cm.appliance_kwh_hi[app] - cm.appliance_kwh_lo[app]) * frac
    floor = np.minimum(tr_rows.standby_kwh[:, None], dom.standby_max_share * energy / 48.0)  # [r, D]
    expected_events = (tr_rows.event_scale * cm.combo_daily_kwh[tr_rows.combo])[:, None]
    rest = np.maximum(energy - 48.0 * floor - expected_events - light, dom.activity_min_share * energy)
    w = _per_day(rest) * act * noise + events + _per_day(light) * win.lighting[gsp]
    return _per_day(floor) + _normalise(w, energy - 48.0 * floor), z, u


def site(seed: int, cm: CompiledModel, win: Window, keys: np.ndarray, arch: np.ndarray, variant: np.ndarray, tr_rows,
         energy: np.ndarray, hvac: np.ndarray) -> np.ndarray:  # fmt: skip
    """Non-domestic half hours [r, H]: site load plus HVAC on occupied hours."""
    slot = (win.local_slot[None, :].astype(np.int64) + np.clip(tr_rows.shift, -1, 1)[:, None]) % 48
    dtype = win.day_type[variant]
    flat = (arch[:, None] * 3 + dtype) * 48 + slot
    shape = cm.site_shape.reshape(-1)[flat]
    base = tr_rows.base_fraction[:, None]
    z, u = correlated_noise(streams.stream_key(seed, "load.hh"), keys, win.hh, 0.3)
    sig = cm.halfhour_sigma[arch][:, None]
    noise = np.exp(sig * z - 0.5 * sig * sig)
    peaks = np.where(top16_uniform(u) < cm.event_rate[arch][:, None], cm.event_size[arch][:, None], 0.0)
    load = (base + (1.0 - base) * shape) * noise + peaks
    out = _normalise(load, energy)
    if hvac.any():
        occ = cm.occupied_shape.reshape(-1)[flat] * noise
        out += _normalise(occ, hvac)
    return out


def shaped(cm: CompiledModel, win: Window, table: np.ndarray, slot: np.ndarray, energy: np.ndarray, hdd: np.ndarray,
           z: np.ndarray, sigma: float, flattening: float, cycle_u: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """Heating half hours [r, H] from a local-clock shape, flatter on cold days, with noise.

    ``cycle_u`` (uniforms [r, H]) switches a heat pump off for part of mild days.
    """
    h = cm.model.heating
    beta = _per_day(flattening * np.clip(hdd / h.cold_day_hdd, 0.0, 1.0))
    w = ((1.0 - beta) * table[slot] + beta) * np.exp(sigma * z - 0.5 * sigma * sigma)
    if cycle_u is not None and h.heat_pump_mild_hdd > 0:
        duty = _per_day(np.clip(hdd / h.heat_pump_mild_hdd, 0.25, 1.0))
        w = w * np.where(cycle_u < duty, 1.0, 0.03)
    return _normalise(w, energy)


def block_starts(local_slot: np.ndarray, gmt: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Start [r, len(days)] in half hours from 00:00 UTC of each day of a block that starts at
    local clock ``local_slot`` in the night after (slot < 24: on the next local date) or the
    evening of (slot >= 24) that day; a GMT switching clock ignores summer time."""
    out = np.empty((len(local_slot), len(days)), dtype=np.int64)
    for s in np.unique(local_slot):
        rows = local_slot == s
        nxt = s < 24
        utc = local_to_utc_index(days + 1, int(s)) + 48 if nxt else local_to_utc_index(days, int(s))
        plain = int(s) + (48 if nxt else 0)
        out[rows] = np.where(gmt[rows][:, None], plain, utc[None, :])
    return out


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
