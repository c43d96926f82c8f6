// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {IEnergyLoop} from "../interfaces/IEnergyLoop.sol";
import {Allocation} from "./Allocation.sol";
import {EnergyRecords} from "./EnergyRecords.sol";
import {Ledger} from "./Ledger.sol";
import {LoopStorage} from "./LoopStorage.sol";

/// @title Settlement
/// @notice Allocates a finalized interval's local energy by the loop's key and books it: energy tokens,
/// and money from the consumers' balances to the producers. Chunked and permissionless, and total: every
/// value is bounded ({LoopStorage}) so that settling a finalized interval never reverts.
/// @dev An external library delegate-called by {EnergyLoop}, once per settlement transaction.
library Settlement {
    /// @dev Side of a {IEnergyLoop-MetersSettled} record.
    uint256 private constant CONSUMPTION = 0;
    uint256 private constant PRODUCTION = 1;

    /// @dev What every step of one settlement transaction reads, the cursor it moves, and the records of
    /// the sides it settled (`records[:recorded]`).
    struct Context {
        uint256 interval;
        IEnergyLoop.IntervalTotals totals;
        IEnergyLoop.Terms terms;
        IEnergyLoop.SettlementCursor cursor;
        uint256 pool;
        bool queued;
        uint256[] records;
        uint256 recorded;
    }

    /// @dev Settles up to `maxSteps` meter-sides of the next finalized interval. A step visits one
    /// meter-side: first every consuming meter, in the order of the consuming list, then every producing
    /// one, paid from what the consumers actually paid. A removed meter leaves its list once it has
    /// nothing left to settle (the last one takes its place). Reverts only with {ZeroSteps} or
    /// {IntervalNotFinalized}: every value is bounded so that nothing else can.
    /// @param queued whether unpaid revenue waits in the receivables queue (a loop with a settlement token)
    function settle(
        LoopStorage.Layout storage s,
        Ledger.Layout storage l,
        mapping(address => EnergyRecords.Balances) storage energy,
        uint256 maxSteps,
        bool queued
    ) external returns (bool done) {
        if (maxSteps == 0) revert IEnergyLoop.ZeroSteps();
        uint256 t = s.progress.nextToSettle;
        if (t >= s.progress.nextToFinalize) revert IEnergyLoop.IntervalNotFinalized(t);
        Context memory c =
            Context(t, LoopStorage.totalsOf(s, t), LoopStorage.termsAt(s, t), s.cursor, 0, queued, new uint256[](0), 0);
        // Pro rata shares min(P, C); the static and weighted keys share P, each consumer capped at its own C.
        c.pool = c.terms.key == IEnergyLoop.AllocationKey.Prorata
            ? Math.min(c.totals.producedWh, c.totals.consumedWh)
            : c.totals.producedWh;
        // a removed meter's reading no longer counts as reported, but its energy still settles
        bool anyone = c.totals.reported != 0 || c.totals.consumedWh != 0 || c.totals.producedWh != 0;
        IEnergyLoop.SettlementCursor memory cursor = c.cursor;
        if (anyone) c.records = new uint256[](Math.min(maxSteps, _sidesLeft(s, cursor)));
        uint256 steps;
        while (true) {
            uint16[] storage list = cursor.phase == 0 ? s.consuming : s.producing;
            if (!anyone || cursor.position >= list.length) {
                if (cursor.phase == 1 || !anyone) {
                    done = true;
                    break;
                }
                (cursor.phase, cursor.position) = (1, 0);
                continue;
            }
            if (steps == maxSteps) break;
            ++steps;
            _visit(s, l, energy, c, list);
        }
        if (c.recorded != 0) {
            (uint256[] memory records, uint256 recorded) = (c.records, c.recorded);
            assembly ("memory-safe") {
                mstore(records, recorded) // only the steps that settled a side
            }
            emit IEnergyLoop.MetersSettled(uint32(t), c.terms.pricePerWh, records);
        }
        if (done) {
            s.progress.nextToSettle = uint32(t + 1);
            delete s.cursor;
            emit IEnergyLoop.IntervalSettled(uint32(t), cursor.allocatedWh);
        } else {
            s.cursor = cursor;
        }
    }

    /// @dev One step: settles the meter at the cursor for the current phase, and moves the cursor on
    /// (or, for a removed meter with nothing left to settle, puts the list's last meter in its place).
    function _visit(
        LoopStorage.Layout storage s,
        Ledger.Layout storage l,
        mapping(address => EnergyRecords.Balances) storage energy,
        Context memory c,
        uint16[] storage list
    ) private {
        IEnergyLoop.SettlementCursor memory cursor = c.cursor;
        uint256 index = list[cursor.position];
        (uint256 consumed, uint256 produced, bool nothingAfter) = _energyOf(s, index, c.interval);
        LoopStorage.MeterSettings memory settings = s.settings[index];
        if (cursor.phase == 0) {
            // a meter that also produces has its production minted here, with its consumption; the
            // producing pass then books only its revenue
            if (consumed != 0) _settleConsumption(l, energy, c, index, settings, consumed, produced);
            else if (produced != 0) EnergyRecords.mintProduction(energy, settings.payout, produced);
        } else if (produced != 0) {
            _settleProduction(l, energy, c, index, settings, produced);
        }
        if (nothingAfter && settings.removed) {
            list[cursor.position] = list[list.length - 1];
            list.pop();
        } else {
            ++cursor.position;
        }
    }

    function _settleConsumption(
        Ledger.Layout storage l,
        mapping(address => EnergyRecords.Balances) storage energy,
        Context memory c,
        uint256 index,
        LoopStorage.MeterSettings memory settings,
        uint256 consumed,
        uint256 produced
    ) private {
        IEnergyLoop.SettlementCursor memory cursor = c.cursor;
        uint256 allocated;
        if (c.terms.key == IEnergyLoop.AllocationKey.Prorata) {
            allocated = Allocation.cumulativeShare(cursor.cumulativeConsumedWh, consumed, c.pool, c.totals.consumedWh);
            cursor.cumulativeConsumedWh += uint64(consumed);
        } else {
            (uint256 share, uint256 weight) = LoopStorage.coefficients(settings, c.terms.epoch);
            allocated = c.terms.key == IEnergyLoop.AllocationKey.Static
                ? Allocation.staticShare(consumed, share, c.totals.producedWh)
                : Allocation.weightedShare(consumed, weight, c.totals.producedWh, c.totals.weightedConsumption);
            // never more than the production left, whatever the coefficients add up to
            allocated = Math.min(allocated, c.pool - cursor.allocatedWh);
        }
        cursor.allocatedWh += uint64(allocated);
        uint256 cost = allocated * c.terms.pricePerWh;
        uint256 paid = Ledger.charge(l, settings.payout, cost);
        cursor.collected += uint128(paid);
        EnergyRecords.mintConsumption(energy, settings.payout, consumed, allocated, produced);
        _note(c, index, CONSUMPTION, consumed, allocated, paid);
    }

    function _settleProduction(
        Ledger.Layout storage l,
        mapping(address => EnergyRecords.Balances) storage energy,
        Context memory c,
        uint256 index,
        LoopStorage.MeterSettings memory settings,
        uint256 produced
    ) private {
        IEnergyLoop.SettlementCursor memory cursor = c.cursor;
        uint256 sold =
            Allocation.cumulativeShare(cursor.cumulativeProducedWh, produced, cursor.allocatedWh, c.totals.producedWh);
        cursor.cumulativeProducedWh += uint64(produced);
        // producers share what the consumers paid in proportion to what they sold: together, exactly that
        uint256 paid = Allocation.cumulativeShare(cursor.cumulativeSoldWh, sold, cursor.collected, cursor.allocatedWh);
        cursor.cumulativeSoldWh += uint64(sold);
        uint256 revenue = sold * c.terms.pricePerWh;
        Ledger.earn(l, settings.payout, revenue, paid, c.queued);
        if (!settings.consumes) EnergyRecords.mintProduction(energy, settings.payout, produced);
        _note(c, index, PRODUCTION, produced, sold, paid);
    }

    /// @dev Adds a {IEnergyLoop-MetersSettled} record. Every field fits: the meter's energy of one
    /// interval is below 2^48 Wh (its counter's width), the local energy at most that, and what is paid at
    /// most the cost, below 2^85 ({LoopStorage}).
    function _note(Context memory c, uint256 index, uint256 side, uint256 energyWh, uint256 localWh, uint256 paid)
        private
        pure
    {
        c.records[c.recorded++] = index | side << 16 | energyWh << 24 | localWh << 72 | paid << 120;
    }

    /// @dev How many meter-sides are left to visit from `cursor`: at least as many as will be settled.
    function _sidesLeft(LoopStorage.Layout storage s, IEnergyLoop.SettlementCursor memory cursor)
        private
        view
        returns (uint256)
    {
        uint256 producing = s.producing.length;
        if (cursor.phase == 1) return producing - cursor.position;
        return s.consuming.length - cursor.position + producing;
    }

    /// @dev A meter's unsettled (consumed, produced) Wh for `interval`, zero if it did not report it, and
    /// whether it has nothing to settle after `interval`.
    function _energyOf(LoopStorage.Layout storage s, uint256 index, uint256 interval)
        private
        view
        returns (uint256, uint256, bool)
    {
        LoopStorage.MeterCounter memory counter = s.counters[index];
        if (counter.nextInterval == interval + 1) return (counter.consumedWh, counter.producedWh, true);
        bool nothingAfter = counter.nextInterval <= interval + 1;
        LoopStorage.Pending memory older = s.older[index];
        if (older.recorded && older.interval == interval) return (older.consumedWh, older.producedWh, nothingAfter);
        return (0, 0, nothingAfter);
    }
}
