// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {IEnergyLoop} from "../interfaces/IEnergyLoop.sol";

/// @title LoopStorage
/// @notice The loop's registry and settlement state, in one struct that {EnergyLoop} owns and the
/// {MeterAdmin} library (delegate-called) changes; and the calendar both read.
/// @dev Widths are chosen so that nothing overflows in a century at the bounds the contract enforces:
/// at most {MAX_METERS} meters, limits below 2^24 W (so a meter's share of one interval is below 2^29 Wh
/// and its energy in a century below 2^44 Wh), prices below 2^56 units per Wh. A meter's state is keyed
/// by its index in the registry, so that the settlement lists pack sixteen meters to a slot.
library LoopStorage {
    /// @notice At most this many meters are ever registered in a loop; their indices fit in 16 bits.
    uint256 internal constant MAX_METERS = type(uint16).max;
    /// @notice A meter's import and export limits are below 2^24 W (16.7 MW).
    uint256 internal constant MAX_LIMIT_W = type(uint24).max;
    /// @notice `activeFrom` of a removed meter.
    uint32 internal constant REMOVED = type(uint32).max;

    /// @dev Read by every reading: who signs, where the meter's state is kept, its physical limits (its
    /// kind follows from them) and the first interval it may report ({REMOVED} once removed). One slot.
    struct MeterRecord {
        address signer;
        uint16 index;
        uint24 importLimitW;
        uint24 exportLimitW;
        uint32 activeFrom;
    }

    /// @dev Updated by every reading: the last indices, the lowest interval the next reading may name
    /// (the energy since the indices counts from its start), and the last reported interval's share
    /// (`nextInterval - 1`) until it is settled. One slot.
    struct MeterCounter {
        uint32 nextInterval;
        uint64 importWh;
        uint64 exportWh;
        uint48 consumedWh;
        uint48 producedWh;
    }

    /// @dev Read by settlement: who is paid, the allocation coefficients, whether the meter was removed
    /// (as its record's `activeFrom` says for readings) and whether it is on the consuming list (its
    /// import limit is not 0). One slot.
    struct MeterSettings {
        address payout;
        uint16 share;
        uint16 weight;
        uint16 nextShare;
        uint16 nextWeight;
        uint16 nextEpoch;
        bool removed;
        bool consumes;
    }

    /// @dev The energy of an older unsettled interval, kept when a meter reports ahead of settlement.
    struct Pending {
        uint32 interval;
        uint48 consumedWh;
        uint48 producedWh;
        bool recorded;
    }

    /// @dev Loop-wide counters, one slot.
    struct Progress {
        uint32 nextToFinalize;
        uint32 nextToSettle;
        uint32 activeMeters;
        uint16 sharesCurrent;
        uint16 sharesNext;
    }

    /// @dev The loop's calendar and the bounds of the PMO's powers: {EnergyLoop}'s immutables.
    struct Calendar {
        uint64 genesis;
        uint32 intervalSeconds;
        uint32 noticeSeconds;
        uint64 priceCapPerWh;
    }

    struct Layout {
        mapping(bytes32 meterId => MeterRecord) records;
        mapping(uint256 index => MeterCounter) counters;
        mapping(uint256 index => MeterSettings) settings;
        mapping(uint256 index => Pending) older;
        mapping(bytes32 meterId => IEnergyLoop.MeterChange) changes;
        mapping(uint256 interval => uint256) joining;
        bytes32[] meterIds;
        uint16[] consuming;
        uint16[] producing;
        IEnergyLoop.IntervalTotals[4] totals;
        Progress progress;
        IEnergyLoop.SettlementCursor cursor;
        IEnergyLoop.Terms current;
        IEnergyLoop.Terms next;
    }

    uint256 internal constant TOTALS_RING = 4;

    /// @dev The current interval, or 0 before genesis (callers check genesis where it matters).
    function currentInterval(Calendar memory c) internal view returns (uint256) {
        return block.timestamp < c.genesis ? 0 : (block.timestamp - c.genesis) / c.intervalSeconds;
    }

    /// @dev The first interval that starts at least the notice period from now, and after the current one.
    function firstNoticedInterval(Calendar memory c) internal view returns (uint256 first) {
        uint256 noticeEnd = block.timestamp + c.noticeSeconds;
        if (noticeEnd > c.genesis) first = Math.ceilDiv(noticeEnd - c.genesis, c.intervalSeconds);
        if (block.timestamp >= c.genesis) first = Math.max(first, currentInterval(c) + 1);
    }

    /// @dev The terms that settle `interval`.
    function termsAt(Layout storage s, uint256 interval) internal view returns (IEnergyLoop.Terms memory) {
        IEnergyLoop.Terms memory next = s.next;
        return next.epoch != 0 && interval >= next.from ? next : s.current;
    }

    /// @dev A meter's (share, weight) under terms epoch `epoch`.
    function coefficients(MeterSettings memory m, uint256 epoch) internal pure returns (uint256, uint256) {
        if (m.nextEpoch != 0 && m.nextEpoch <= epoch) return (m.nextShare, m.nextWeight);
        return (m.share, m.weight);
    }

    /// @dev What was reported for `interval` (zeros once its ring slot is reused).
    function totalsOf(Layout storage s, uint256 interval) internal view returns (IEnergyLoop.IntervalTotals memory totals) {
        totals = s.totals[interval % TOTALS_RING];
        if (totals.interval != interval) totals = IEnergyLoop.IntervalTotals(uint32(interval), 0, 0, 0, 0);
    }

    /// @dev What a meter's limits make it.
    function kindOf(MeterRecord memory r) internal pure returns (IEnergyLoop.MeterKind) {
        if (r.exportLimitW == 0) return IEnergyLoop.MeterKind.Consumer;
        if (r.importLimitW == 0) return IEnergyLoop.MeterKind.Producer;
        return IEnergyLoop.MeterKind.Prosumer;
    }

    /// @dev Whether an active meter has had a reading accepted since it was admitted.
    function hasReported(MeterRecord memory r, MeterCounter memory c) internal pure returns (bool) {
        return c.nextInterval > r.activeFrom;
    }
}
