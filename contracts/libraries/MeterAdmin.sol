// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Allocation} from "./Allocation.sol";
import {LoopStorage} from "./LoopStorage.sol";
import {IEnergyLoop} from "../interfaces/IEnergyLoop.sol";

/// @title MeterAdmin
/// @notice The PMO's powers over the registry and the terms, bounded by the loop's notice period and
/// price cap. {EnergyLoop} checks the caller and delegate-calls these; they run on its storage and
/// emit its events.
/// @dev An external library, deployed once and linked, so the loop's hot paths keep the contract under
/// the 24,576-byte limit.
library MeterAdmin {
    using LoopStorage for LoopStorage.Calendar;

    /// @dev Admits meters; each may report from the first interval after the notice period.
    function addMeters(
        LoopStorage.Layout storage s,
        LoopStorage.Calendar memory cal,
        IEnergyLoop.MeterInit[] calldata meters
    ) external {
        LoopStorage.Progress memory p = s.progress;
        uint256 admitted = cal.currentInterval();
        uint256 activeFrom = cal.noticeSeconds == 0 ? admitted : cal.firstNoticedInterval();
        uint256 addedShares;
        for (uint256 i; i < meters.length; ++i) {
            IEnergyLoop.MeterInit calldata m = meters[i];
            _checkNewMeter(s, m);
            // fit: _checkNewMeter bounds the count by MAX_METERS and the limits by MAX_LIMIT_W
            uint16 index = uint16(s.meterIds.length);
            s.records[m.meterId] = LoopStorage.MeterRecord(
                m.signer, index, uint24(m.importLimitW), uint24(m.exportLimitW), uint32(activeFrom)
            );
            s.counters[index] = LoopStorage.MeterCounter(uint32(admitted), m.importWh, m.exportWh, 0, 0);
            s.settings[index] = LoopStorage.MeterSettings(m.payout, m.share, m.weight, 0, 0, 0, false, m.importLimitW != 0);
            s.meterIds.push(m.meterId);
            if (m.importLimitW != 0) s.consuming.push(index);
            if (m.exportLimitW != 0) s.producing.push(index);
            addedShares += m.share;
            emit IEnergyLoop.MeterAdded(
                m.meterId, m.signer, m.payout, m.kind, m.importLimitW, m.exportLimitW, uint32(activeFrom), index
            );
        }
        s.joining[activeFrom] += meters.length;
        p.sharesCurrent = _addShares(p.sharesCurrent, addedShares);
        if (s.next.epoch != 0) p.sharesNext = _addShares(p.sharesNext, addedShares);
        s.progress = p;
    }

    /// @dev Removes a meter: it stops counting for finalization and in the shares at once, and leaves
    /// the settlement lists once its last reported interval is settled.
    function removeMeter(LoopStorage.Layout storage s, bytes32 meterId) external {
        LoopStorage.MeterRecord memory record = _activeRecord(s, meterId);
        LoopStorage.MeterCounter memory counter = s.counters[record.index];
        LoopStorage.Progress memory p = s.progress;
        if (record.activeFrom < p.nextToFinalize) --p.activeMeters;
        else --s.joining[record.activeFrom];
        if (LoopStorage.hasReported(record, counter)) {
            _unreport(s, counter.nextInterval - 1, p.nextToFinalize);
            LoopStorage.Pending memory older = s.older[record.index];
            if (older.recorded) _unreport(s, older.interval, p.nextToFinalize);
        }
        LoopStorage.MeterSettings memory settings = s.settings[record.index];
        (uint256 shareNow,) = LoopStorage.coefficients(settings, s.current.epoch);
        p.sharesCurrent -= uint16(shareNow);
        if (s.next.epoch != 0) {
            (uint256 shareNext,) = LoopStorage.coefficients(settings, s.next.epoch);
            p.sharesNext -= uint16(shareNext);
        }
        s.progress = p;
        s.records[meterId].activeFrom = LoopStorage.REMOVED;
        s.settings[record.index].removed = true;
        delete s.changes[meterId];
        emit IEnergyLoop.MeterRemoved(meterId);
    }

    /// @dev Announces a new key (and with `reset`, new indices); with no notice period it applies at once.
    function scheduleChange(
        LoopStorage.Layout storage s,
        LoopStorage.Calendar memory cal,
        bytes32 meterId,
        IEnergyLoop.MeterChange memory change
    ) external {
        _activeRecord(s, meterId);
        if (change.signer == address(0)) revert IEnergyLoop.InvalidMeterAccount(change.signer);
        change.effectiveAt = uint40(block.timestamp + cal.noticeSeconds);
        s.changes[meterId] = change;
        emit IEnergyLoop.MeterChangeScheduled(
            meterId, change.signer, change.reset, change.importWh, change.exportWh, change.effectiveAt
        );
        if (cal.noticeSeconds == 0) applyChange(s, meterId, false);
    }

    /// @dev Puts the announced change of `meterId` into effect: due, or `confirmed` by its member.
    function applyChange(LoopStorage.Layout storage s, bytes32 meterId, bool confirmed) public {
        IEnergyLoop.MeterChange memory change = s.changes[meterId];
        if (change.signer == address(0)) revert IEnergyLoop.NoMeterChange(meterId);
        if (!confirmed && block.timestamp < change.effectiveAt) {
            revert IEnergyLoop.MeterChangeNotDue(meterId, change.effectiveAt);
        }
        LoopStorage.MeterRecord storage record = s.records[meterId];
        emit IEnergyLoop.MeterChanged(meterId, record.signer, change.signer, confirmed);
        record.signer = change.signer;
        if (change.reset) {
            LoopStorage.MeterCounter storage counter = s.counters[record.index];
            (counter.importWh, counter.exportWh) = (change.importWh, change.exportWh);
        }
        delete s.changes[meterId];
    }

    /// @dev Sets the terms from `from` on, at least the notice period ahead; replaces terms not yet in
    /// force, or promotes the ones in force once every interval before them is settled.
    function scheduleTerms(
        LoopStorage.Layout storage s,
        LoopStorage.Calendar memory cal,
        IEnergyLoop.AllocationKey key,
        uint64 pricePerWh,
        uint32 from
    ) external {
        if (pricePerWh > cal.priceCapPerWh) revert IEnergyLoop.PriceAboveCap(pricePerWh, cal.priceCapPerWh);
        uint256 earliest = cal.firstNoticedInterval();
        if (from < earliest) revert IEnergyLoop.InvalidEffectiveInterval(from, earliest);
        uint256 current = cal.currentInterval();
        IEnergyLoop.Terms memory next = s.next;
        if (next.epoch != 0 && next.from <= current && block.timestamp >= cal.genesis) {
            if (next.from > s.progress.nextToSettle) revert IEnergyLoop.TermsChangePending(next.from);
            s.current = next;
            s.progress.sharesCurrent = s.progress.sharesNext;
            next.epoch = 0;
        }
        if (next.epoch == 0) {
            next.epoch = s.current.epoch + 1;
            s.progress.sharesNext = s.progress.sharesCurrent;
        }
        s.next = IEnergyLoop.Terms({key: key, pricePerWh: pricePerWh, from: from, epoch: next.epoch});
        emit IEnergyLoop.TermsScheduled(next.epoch, key, pricePerWh, from);
    }

    /// @dev Sets meters' coefficients for the scheduled terms, while they are at least the notice away.
    function setCoefficients(
        LoopStorage.Layout storage s,
        LoopStorage.Calendar memory cal,
        bytes32[] calldata meterIds,
        uint16[] calldata shares,
        uint16[] calldata weights
    ) external {
        if (meterIds.length != shares.length || meterIds.length != weights.length) {
            revert IEnergyLoop.LengthMismatch();
        }
        IEnergyLoop.Terms memory next = s.next;
        if (next.epoch == 0 || next.from < cal.firstNoticedInterval()) revert IEnergyLoop.NoPendingTerms();
        uint256 total = s.progress.sharesNext;
        for (uint256 i; i < meterIds.length; ++i) {
            LoopStorage.MeterSettings storage m = s.settings[_activeRecord(s, meterIds[i]).index];
            if (shares[i] > Allocation.SHARE_DENOMINATOR) revert IEnergyLoop.InvalidShare(shares[i]);
            if (m.nextEpoch != 0 && m.nextEpoch < next.epoch) (m.share, m.weight) = (m.nextShare, m.nextWeight);
            uint256 previous = m.nextEpoch == next.epoch ? m.nextShare : m.share;
            total = total + shares[i] - previous;
            (m.nextShare, m.nextWeight, m.nextEpoch) = (shares[i], weights[i], next.epoch);
            emit IEnergyLoop.CoefficientsScheduled(meterIds[i], next.epoch, shares[i], weights[i]);
        }
        s.progress.sharesNext = _addShares(0, total);
    }

    function _checkNewMeter(LoopStorage.Layout storage s, IEnergyLoop.MeterInit calldata m) private view {
        if (m.meterId == bytes32(0)) revert IEnergyLoop.InvalidMeterId();
        if (m.signer == address(0)) revert IEnergyLoop.InvalidMeterAccount(m.signer);
        if (m.payout == address(0)) revert IEnergyLoop.InvalidMeterAccount(m.payout);
        if (s.records[m.meterId].signer != address(0)) revert IEnergyLoop.MeterAlreadyRegistered(m.meterId);
        if (m.share > Allocation.SHARE_DENOMINATOR) revert IEnergyLoop.InvalidShare(m.share);
        if (s.meterIds.length >= LoopStorage.MAX_METERS) revert IEnergyLoop.TooManyMeters(LoopStorage.MAX_METERS);
        bool imports = m.kind != IEnergyLoop.MeterKind.Producer;
        bool exports = m.kind != IEnergyLoop.MeterKind.Consumer;
        bool fits = m.importLimitW <= LoopStorage.MAX_LIMIT_W && m.exportLimitW <= LoopStorage.MAX_LIMIT_W;
        if (!fits || (m.importLimitW != 0) != imports || (m.exportLimitW != 0) != exports) {
            revert IEnergyLoop.InvalidMeterLimits(m.kind, m.importLimitW, m.exportLimitW);
        }
    }

    /// @dev A removed meter no longer counts as having reported `interval`, if that is still open.
    function _unreport(LoopStorage.Layout storage s, uint256 interval, uint256 nextToFinalize) private {
        IEnergyLoop.IntervalTotals storage totals = s.totals[interval % LoopStorage.TOTALS_RING];
        if (interval >= nextToFinalize && totals.interval == interval && totals.reported != 0) --totals.reported;
    }

    function _activeRecord(LoopStorage.Layout storage s, bytes32 meterId)
        private
        view
        returns (LoopStorage.MeterRecord memory record)
    {
        record = s.records[meterId];
        if (record.signer == address(0)) revert IEnergyLoop.UnknownMeter(meterId);
        if (record.activeFrom == LoopStorage.REMOVED) revert IEnergyLoop.MeterNotActive(meterId);
    }

    function _addShares(uint256 total, uint256 added) private pure returns (uint16) {
        total += added;
        if (total > Allocation.SHARE_DENOMINATOR) revert IEnergyLoop.SharesExceedTotal(total);
        return uint16(total);
    }
}
