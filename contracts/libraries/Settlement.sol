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
    /// @dev What every step of one settlement transaction reads, and the cursor it moves.
    struct Context {
        uint256 interval;
        IEnergyLoop.IntervalTotals totals;
        IEnergyLoop.Terms terms;
        IEnergyLoop.SettlementCursor cursor;
        uint256 pool;
        bool queued;
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
        Context memory c = Context(t, LoopStorage.totalsOf(s, t), LoopStorage.termsAt(s, t), s.cursor, 0, queued);
        // Pro rata shares min(P, C); the static and weighted keys share P, each consumer capped at its own C.
        c.pool = c.terms.key == IEnergyLoop.AllocationKey.Prorata
            ? Math.min(c.totals.producedWh, c.totals.consumedWh)
            : c.totals.producedWh;
        // a removed meter's reading no longer counts as reported, but its energy still settles
        bool anyone = c.totals.reported != 0 || c.totals.consumedWh != 0 || c.totals.producedWh != 0;
        IEnergyLoop.SettlementCursor memory cursor = c.cursor;
        uint256 steps;
        while (true) {
            bytes32[] storage list = cursor.phase == 0 ? s.consuming : s.producing;
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
        bytes32[] storage list
    ) private {
        IEnergyLoop.SettlementCursor memory cursor = c.cursor;
        bytes32 meterId = list[cursor.position];
        (uint256 consumed, uint256 produced, bool nothingAfter) = _energyOf(s, meterId, c.interval);
        LoopStorage.MeterSettings memory settings = s.settings[meterId];
        if (cursor.phase == 0) {
            // a meter that also produces has its production minted here, with its consumption; the
            // producing pass then books only its revenue
            if (consumed != 0) _settleConsumption(l, energy, c, meterId, settings, consumed, produced);
            else if (produced != 0) EnergyRecords.mintProduction(energy, settings.payout, produced);
        } else if (produced != 0) {
            _settleProduction(l, energy, c, meterId, settings, produced);
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
        bytes32 meterId,
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
        emit IEnergyLoop.ConsumptionSettled(
            uint32(c.interval), meterId, uint64(consumed), uint64(allocated), cost, paid
        );
    }

    function _settleProduction(
        Ledger.Layout storage l,
        mapping(address => EnergyRecords.Balances) storage energy,
        Context memory c,
        bytes32 meterId,
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
        emit IEnergyLoop.ProductionSettled(uint32(c.interval), meterId, uint64(produced), uint64(sold), revenue, paid);
    }

    /// @dev A meter's unsettled (consumed, produced) Wh for `interval`, zero if it did not report it, and
    /// whether it has nothing to settle after `interval`.
    function _energyOf(LoopStorage.Layout storage s, bytes32 meterId, uint256 interval)
        private
        view
        returns (uint256, uint256, bool)
    {
        LoopStorage.MeterCounter memory counter = s.counters[meterId];
        if (counter.nextInterval == interval + 1) return (counter.consumedWh, counter.producedWh, true);
        bool nothingAfter = counter.nextInterval <= interval + 1;
        LoopStorage.Pending memory older = s.older[meterId];
        if (older.recorded && older.interval == interval) return (older.consumedWh, older.producedWh, nothingAfter);
        return (0, 0, nothingAfter);
    }
}
