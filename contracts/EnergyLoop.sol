// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {EnergyTokens} from "./EnergyTokens.sol";
import {IEnergyLoop} from "./interfaces/IEnergyLoop.sol";
import {Allocation} from "./libraries/Allocation.sol";

/// @title EnergyLoop
/// @notice One collective self-consumption loop. The owner is its organiser, the PMO, who admits
/// meters and sets the terms for future intervals; ownership moves in two steps ({Ownable2Step}).
/// Readings count only when signed by the meter's registered gateway key. Finalizing and settling are
/// permissionless; settlement is chunked so its cost per member does not grow with the loop.
/// @dev Gas layout: a reading reads the meter's record slot and updates its counter slot (indices and
/// the interval's energy) and the interval's totals (shared by the batch); a settlement step reads the
/// counter and updates its payout account's single slot. Nothing takes a fresh slot per reading.
contract EnergyLoop is IEnergyLoop, EnergyTokens, EIP712, Ownable2Step, Pausable, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @notice EIP-712 type of a reading.
    bytes32 public constant READING_TYPEHASH =
        keccak256("Reading(bytes32 meterId,uint32 interval,uint64 importWh,uint64 exportWh)");
    /// @notice Largest energy a meter may report for one interval (Wh).
    uint256 public constant MAX_DELTA_WH = type(uint48).max;
    /// @notice A meter may report at most this many intervals past the last settled one.
    uint256 public constant SETTLEMENT_LAG = 2;
    uint256 private constant _TOTALS_RING = 4;

    /// @notice Start of interval 0 (unix seconds).
    uint64 public immutable genesis;
    /// @notice Length of a settlement interval in seconds.
    uint32 public immutable intervalSeconds;
    /// @notice How long after its end an interval waits for missing readings before it can be finalized.
    uint32 public immutable graceSeconds;
    /// @notice The ERC-20 members deposit and withdraw; zero for a credits-only ledger.
    IERC20 public immutable settlementToken;
    /// @notice The PMO's ledger account.
    address public immutable treasury;

    /// @dev Read by every reading: who signs, and the allocation coefficients.
    struct MeterRecord {
        address signer;
        MeterKind kind;
        bool active;
        uint16 share;
        uint16 weight;
        uint16 nextShare;
        uint16 nextWeight;
        uint16 nextEpoch;
    }

    /// @dev Updated by every reading: the last indices, the lowest interval the next reading may name,
    /// and the energy of the last reported interval (`nextInterval - 1`) until it is settled.
    struct MeterCounter {
        uint32 nextInterval;
        uint64 importWh;
        uint64 exportWh;
        uint48 consumedWh;
        uint48 producedWh;
    }

    /// @dev The energy of an older unsettled interval, kept when a meter reports ahead of settlement.
    struct Pending {
        uint32 interval;
        uint48 consumedWh;
        uint48 producedWh;
    }

    /// @dev Loop-wide counters, one slot.
    struct Progress {
        uint32 nextToFinalize;
        uint32 nextToSettle;
        uint32 activeMeters;
        uint16 sharesCurrent;
        uint16 sharesNext;
    }

    mapping(bytes32 meterId => MeterRecord) private _records;
    mapping(bytes32 meterId => MeterCounter) private _counters;
    mapping(bytes32 meterId => Pending) private _older;
    mapping(bytes32 meterId => address) private _payouts;
    bytes32[] private _meterIds;
    IntervalTotals[_TOTALS_RING] private _totals;
    Progress private _progress;
    SettlementCursor private _cursor;
    Terms private _current;
    Terms private _next;

    /// @param pmo the loop's organiser and administrator
    /// @param treasury_ the PMO's ledger account
    /// @param token the ERC-20 of deposits and withdrawals, or zero for a credits-only ledger
    /// @param genesis_ start of interval 0 (unix seconds)
    /// @param intervalSeconds_ settlement interval length, 60 s to 1 day
    /// @param graceSeconds_ wait for missing readings after an interval's end
    /// @param key the allocation key of epoch 0
    /// @param pricePerWh price of locally shared energy in ledger units per Wh, for epoch 0
    constructor(
        address pmo,
        address treasury_,
        IERC20 token,
        uint64 genesis_,
        uint32 intervalSeconds_,
        uint32 graceSeconds_,
        AllocationKey key,
        uint128 pricePerWh
    ) Ownable(pmo) EIP712("daisee EnergyLoop", "1") EnergyTokens("") {
        if (intervalSeconds_ < 60 || intervalSeconds_ > 1 days) revert InvalidIntervalLength(intervalSeconds_);
        if (treasury_ == address(0)) revert InvalidMeterAccount(treasury_);
        genesis = genesis_;
        intervalSeconds = intervalSeconds_;
        graceSeconds = graceSeconds_;
        settlementToken = token;
        treasury = treasury_;
        _current = Terms({key: key, pricePerWh: pricePerWh, from: 0, epoch: 0});
        emit LoopConfigured(genesis_, intervalSeconds_, graceSeconds_, treasury_, address(token));
        emit TermsScheduled(0, key, pricePerWh, 0);
    }

    // ================================================================== PMO

    /// @inheritdoc IEnergyLoop
    /// @dev Reverts with {InvalidMeterId}, {InvalidMeterAccount}, {MeterAlreadyRegistered}, {InvalidShare}
    /// or {SharesExceedTotal}; the new meters' shares count in the current and the scheduled terms.
    function addMeters(MeterInit[] calldata meters) external onlyOwner {
        Progress memory p = _progress;
        uint256 addedShares;
        for (uint256 i; i < meters.length; ++i) {
            MeterInit calldata m = meters[i];
            if (m.meterId == bytes32(0)) revert InvalidMeterId();
            if (m.signer == address(0)) revert InvalidMeterAccount(m.signer);
            if (m.payout == address(0)) revert InvalidMeterAccount(m.payout);
            if (_records[m.meterId].signer != address(0)) revert MeterAlreadyRegistered(m.meterId);
            if (m.share > Allocation.SHARE_DENOMINATOR) revert InvalidShare(m.share);
            _records[m.meterId] = MeterRecord(m.signer, m.kind, true, m.share, m.weight, 0, 0, 0);
            _counters[m.meterId] = MeterCounter(0, m.importWh, m.exportWh, 0, 0);
            _payouts[m.meterId] = m.payout;
            _meterIds.push(m.meterId);
            addedShares += m.share;
            emit MeterAdded(m.meterId, m.signer, m.payout, m.kind);
        }
        p.sharesCurrent = _addShares(p.sharesCurrent, addedShares);
        if (_next.epoch != 0) p.sharesNext = _addShares(p.sharesNext, addedShares);
        p.activeMeters += SafeCast.toUint32(meters.length);
        _progress = p;
    }

    /// @inheritdoc IEnergyLoop
    /// @dev Reverts with {UnknownMeter} or {MeterNotActive}. Its shares stay counted until changed.
    function removeMeter(bytes32 meterId) external onlyOwner {
        MeterRecord storage record = _activeRecord(meterId);
        record.active = false;
        --_progress.activeMeters;
        emit MeterRemoved(meterId);
    }

    /// @inheritdoc IEnergyLoop
    /// @dev Reverts with {UnknownMeter}, {MeterNotActive} or {InvalidMeterAccount}. Readings signed by
    /// the previous key are rejected from now on, including those not yet submitted.
    function rotateSigner(bytes32 meterId, address newSigner) external onlyOwner {
        MeterRecord storage record = _activeRecord(meterId);
        if (newSigner == address(0)) revert InvalidMeterAccount(newSigner);
        emit SignerRotated(meterId, record.signer, newSigner);
        record.signer = newSigner;
    }

    /// @inheritdoc IEnergyLoop
    /// @dev `from` must be after the current interval ({InvalidEffectiveInterval}). Scheduling again
    /// before `from` replaces the scheduled terms; once they are in force, new terms can be scheduled
    /// when every interval before them is settled ({TermsChangePending}).
    function scheduleTerms(AllocationKey key, uint128 pricePerWh, uint32 from) external onlyOwner {
        uint256 current = _currentInterval();
        if (from <= current && block.timestamp >= genesis) revert InvalidEffectiveInterval(from, current);
        Terms memory next = _next;
        if (next.epoch != 0 && next.from <= current && block.timestamp >= genesis) {
            if (next.from > _progress.nextToSettle) revert TermsChangePending(next.from);
            _current = next;
            _progress.sharesCurrent = _progress.sharesNext;
            next.epoch = 0;
        }
        if (next.epoch == 0) {
            next.epoch = _current.epoch + 1;
            _progress.sharesNext = _progress.sharesCurrent;
        }
        _next = Terms({key: key, pricePerWh: pricePerWh, from: from, epoch: next.epoch});
        emit TermsScheduled(next.epoch, key, pricePerWh, from);
    }

    /// @inheritdoc IEnergyLoop
    /// @dev Applies to the terms scheduled by {scheduleTerms} and not yet in force ({NoPendingTerms});
    /// reverts with {LengthMismatch}, {UnknownMeter}, {InvalidShare} or {SharesExceedTotal}.
    function setCoefficients(bytes32[] calldata meterIds, uint16[] calldata shares, uint16[] calldata weights)
        external
        onlyOwner
    {
        if (meterIds.length != shares.length || meterIds.length != weights.length) revert LengthMismatch();
        Terms memory next = _next;
        if (next.epoch == 0 || (next.from <= _currentInterval() && block.timestamp >= genesis)) {
            revert NoPendingTerms();
        }
        uint256 total = _progress.sharesNext;
        for (uint256 i; i < meterIds.length; ++i) {
            MeterRecord storage record = _records[meterIds[i]];
            if (record.signer == address(0)) revert UnknownMeter(meterIds[i]);
            if (shares[i] > Allocation.SHARE_DENOMINATOR) revert InvalidShare(shares[i]);
            if (record.nextEpoch != 0 && record.nextEpoch < next.epoch) {
                (record.share, record.weight) = (record.nextShare, record.nextWeight);
            }
            uint256 previous = record.nextEpoch == next.epoch ? record.nextShare : record.share;
            total = total + shares[i] - previous;
            (record.nextShare, record.nextWeight, record.nextEpoch) = (shares[i], weights[i], next.epoch);
            emit CoefficientsScheduled(meterIds[i], next.epoch, shares[i], weights[i]);
        }
        _progress.sharesNext = _addShares(0, total);
    }

    /// @inheritdoc IEnergyLoop
    function pauseReadings() external onlyOwner {
        _pause();
    }

    /// @inheritdoc IEnergyLoop
    function unpauseReadings() external onlyOwner {
        _unpause();
    }

    // ================================================================== readings

    /// @inheritdoc IEnergyLoop
    /// @dev Checks run in {RejectReason} order; a skipped reading emits {ReadingRejected} and changes
    /// nothing, an accepted one emits {ReadingAccepted}. Reverts only with {EmptyBatch} or when paused.
    function submitReadings(SignedReading[] calldata readings) external whenNotPaused returns (uint256 accepted) {
        if (readings.length == 0) revert EmptyBatch();
        uint256 current = _currentInterval();
        Progress memory p = _progress;
        for (uint256 i; i < readings.length; ++i) {
            SignedReading calldata r = readings[i];
            (bool ok, RejectReason reason) = _record(r, current, p);
            if (ok) {
                ++accepted;
                emit ReadingAccepted(r.meterId, r.interval, r.importWh, r.exportWh);
            } else {
                emit ReadingRejected(r.meterId, r.interval, reason);
            }
        }
    }

    /// @dev Checks and records one reading; returns false and the reason when it is skipped.
    function _record(SignedReading calldata r, uint256 current, Progress memory p)
        private
        returns (bool, RejectReason)
    {
        MeterRecord memory record = _records[r.meterId];
        if (record.signer == address(0)) return (false, RejectReason.UnknownMeter);
        bytes32 digest = _hashTypedDataV4(
            keccak256(abi.encode(READING_TYPEHASH, r.meterId, r.interval, r.importWh, r.exportWh))
        );
        (address signer, ECDSA.RecoverError error,) = ECDSA.tryRecover(digest, r.r, r.vs);
        if (error != ECDSA.RecoverError.NoError || signer != record.signer) return (false, RejectReason.BadSignature);
        if (!record.active) return (false, RejectReason.MeterInactive);

        MeterCounter memory counter = _counters[r.meterId];
        uint256 t = r.interval;
        if (t < counter.nextInterval) return (false, RejectReason.StaleInterval);
        if (t >= current) return (false, RejectReason.FutureInterval);
        if (t < p.nextToFinalize) return (false, RejectReason.IntervalFinalized);
        if (t >= p.nextToSettle + SETTLEMENT_LAG) return (false, RejectReason.SettlementBacklog);
        if (r.importWh < counter.importWh || r.exportWh < counter.exportWh) {
            return (false, RejectReason.IndexDecreased);
        }
        uint256 consumed = r.importWh - counter.importWh;
        uint256 produced = r.exportWh - counter.exportWh;
        if (consumed > MAX_DELTA_WH || produced > MAX_DELTA_WH) return (false, RejectReason.IndexOverflow);

        if (counter.nextInterval > p.nextToSettle && (counter.consumedWh | counter.producedWh) != 0) {
            // the last reported interval is not settled yet: keep its energy aside (the slot is free, since
            // SETTLEMENT_LAG leaves at most one older unsettled interval)
            _older[r.meterId] = Pending(counter.nextInterval - 1, counter.consumedWh, counter.producedWh);
        }
        // both casts fit: checked against MAX_DELTA_WH above
        _counters[r.meterId] = MeterCounter(r.interval + 1, r.importWh, r.exportWh, uint48(consumed), uint48(produced));
        IntervalTotals storage totals = _totals[t % _TOTALS_RING];
        if (totals.interval != t) _totals[t % _TOTALS_RING] = IntervalTotals(r.interval, 0, 0, 0, 0);
        totals.reported += 1;
        totals.consumedWh += uint64(consumed);
        totals.producedWh += uint64(produced);
        Terms memory terms = _termsAt(t);
        if (consumed != 0 && terms.key == AllocationKey.Weighted) {
            (, uint256 weight) = _coefficients(record, terms.epoch);
            totals.weightedConsumption += uint128(weight * consumed);
        }
        return (true, RejectReason.UnknownMeter); // the reason is unused when accepted
    }

    // ================================================================== finalize and settle

    /// @inheritdoc IEnergyLoop
    /// @dev Reverts with {IntervalNotNext}, {IntervalNotOver} or {IntervalStillOpen}.
    function finalize(uint256 interval) external {
        Progress memory p = _progress;
        if (interval != p.nextToFinalize) revert IntervalNotNext(interval, p.nextToFinalize);
        if (block.timestamp < genesis || interval >= _currentInterval()) revert IntervalNotOver(interval);
        IntervalTotals memory totals = _totalsOf(interval);
        uint256 graceEnd = genesis + (interval + 1) * intervalSeconds + graceSeconds;
        if (totals.reported < p.activeMeters && block.timestamp < graceEnd) {
            revert IntervalStillOpen(interval, totals.reported, p.activeMeters, graceEnd);
        }
        _progress.nextToFinalize = uint32(interval + 1);
        emit IntervalFinalized(uint32(interval), totals.consumedWh, totals.producedWh, totals.reported);
    }

    /// @inheritdoc IEnergyLoop
    /// @dev A step visits one meter, in registration order. Under the pro-rata key one pass settles both
    /// sides; under the static and weighted keys a first pass settles consumption and a second one
    /// production, which is paid for what the consumers were allocated. Reverts with {ZeroSteps} or
    /// {IntervalNotFinalized}.
    function settle(uint256 maxSteps) external returns (bool done) {
        if (maxSteps == 0) revert ZeroSteps();
        uint256 t = _progress.nextToSettle;
        if (t >= _progress.nextToFinalize) revert IntervalNotFinalized(t);
        IntervalTotals memory totals = _totalsOf(t);
        Terms memory terms = _termsAt(t);
        SettlementCursor memory cursor = _cursor;
        uint256 count = totals.reported == 0 ? 0 : _meterIds.length;
        uint256 pool = totals.producedWh < totals.consumedWh ? totals.producedWh : totals.consumedWh;
        // Pro rata allocates exactly `pool`, so producers can be paid in the same pass; the other keys know
        // what was allocated only after every consumer, so production waits for a second pass.
        bool onePass = terms.key == AllocationKey.Prorata;

        for (uint256 steps; steps < maxSteps && !done; ++steps) {
            if (cursor.position == count) {
                if (onePass || cursor.phase == 1 || count == 0) {
                    done = true;
                    break;
                }
                (cursor.phase, cursor.position) = (1, 0);
            }
            bytes32 meterId = _meterIds[cursor.position];
            ++cursor.position;
            (uint256 consumed, uint256 produced) = _energyOf(meterId, t);
            if (cursor.phase == 0 && consumed != 0) {
                _settleConsumption(t, meterId, consumed, totals, terms, cursor, pool);
            }
            if ((onePass || cursor.phase == 1) && produced != 0) {
                uint256 sold = onePass ? pool : cursor.allocatedWh;
                _settleProduction(t, meterId, produced, sold, totals.producedWh, terms.pricePerWh, cursor);
            }
            done = cursor.position == count && (onePass || cursor.phase == 1);
        }
        if (done) {
            _progress.nextToSettle = uint32(t + 1);
            delete _cursor;
            emit IntervalSettled(uint32(t), cursor.allocatedWh);
        } else {
            _cursor = cursor;
        }
    }

    function _settleConsumption(
        uint256 t,
        bytes32 meterId,
        uint256 consumed,
        IntervalTotals memory totals,
        Terms memory terms,
        SettlementCursor memory cursor,
        uint256 pool
    ) private {
        uint256 allocated;
        if (terms.key == AllocationKey.Prorata) {
            allocated = Allocation.cumulativeShare(cursor.cumulativeConsumedWh, consumed, pool, totals.consumedWh);
            cursor.cumulativeConsumedWh += uint56(consumed);
        } else {
            (uint256 share, uint256 weight) = _coefficients(_records[meterId], terms.epoch);
            allocated = terms.key == AllocationKey.Static
                ? Allocation.staticShare(consumed, share, totals.producedWh)
                : Allocation.weightedShare(consumed, weight, totals.producedWh, totals.weightedConsumption);
        }
        cursor.allocatedWh += uint56(allocated);
        uint256 cost = allocated * terms.pricePerWh;
        _recordConsumption(_payouts[meterId], consumed, allocated, cost);
        emit ConsumptionSettled(uint32(t), meterId, uint64(consumed), uint64(allocated), cost);
    }

    function _settleProduction(
        uint256 t,
        bytes32 meterId,
        uint256 produced,
        uint256 soldTotal,
        uint256 producedTotal,
        uint256 pricePerWh,
        SettlementCursor memory cursor
    ) private {
        uint256 sold = Allocation.cumulativeShare(cursor.cumulativeProducedWh, produced, soldTotal, producedTotal);
        cursor.cumulativeProducedWh += uint56(produced);
        uint256 revenue = sold * pricePerWh;
        _recordProduction(_payouts[meterId], produced, revenue);
        emit ProductionSettled(uint32(t), meterId, uint64(produced), uint64(sold), revenue);
    }

    // ================================================================== ledger

    /// @inheritdoc IEnergyLoop
    /// @dev Reverts with {ZeroAmount} or {NoSettlementToken}; the token must be approved first.
    function deposit(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        if (address(settlementToken) == address(0)) revert NoSettlementToken();
        _accounts[msg.sender].ledger += SafeCast.toInt112(SafeCast.toInt256(amount));
        emit Deposited(msg.sender, amount);
        settlementToken.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IEnergyLoop
    /// @dev Reverts with {ZeroAmount}, {NoSettlementToken} or {InsufficientBalance}. The balance is
    /// debited before the transfer and the call is guarded against reentrancy.
    function withdraw(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        if (address(settlementToken) == address(0)) revert NoSettlementToken();
        Account storage account = _accounts[msg.sender];
        if (account.ledger < SafeCast.toInt256(amount)) revert InsufficientBalance(msg.sender, account.ledger, amount);
        account.ledger -= SafeCast.toInt112(SafeCast.toInt256(amount));
        emit Withdrawn(msg.sender, amount);
        settlementToken.safeTransfer(msg.sender, amount);
    }

    // ================================================================== views

    /// @inheritdoc IEnergyLoop
    function meter(bytes32 meterId) external view returns (Meter memory) {
        MeterRecord memory r = _records[meterId];
        if (r.signer == address(0)) revert UnknownMeter(meterId);
        MeterCounter memory c = _counters[meterId];
        return Meter(
            r.signer,
            _payouts[meterId],
            r.kind,
            r.active,
            r.share,
            r.weight,
            r.nextShare,
            r.nextWeight,
            r.nextEpoch,
            c.nextInterval,
            c.importWh,
            c.exportWh
        );
    }

    /// @inheritdoc IEnergyLoop
    function meterCount() external view returns (uint256) {
        return _meterIds.length;
    }

    /// @inheritdoc IEnergyLoop
    function activeMeterCount() external view returns (uint256) {
        return _progress.activeMeters;
    }

    /// @inheritdoc IEnergyLoop
    function meterIdAt(uint256 index) external view returns (bytes32) {
        if (index >= _meterIds.length) revert MeterIndexOutOfRange(index, _meterIds.length);
        return _meterIds[index];
    }

    /// @inheritdoc IEnergyLoop
    function intervalAt(uint256 timestamp) public view returns (uint256) {
        if (timestamp < genesis) revert BeforeGenesis(timestamp, genesis);
        return (timestamp - genesis) / intervalSeconds;
    }

    /// @inheritdoc IEnergyLoop
    function currentInterval() external view returns (uint256) {
        return intervalAt(block.timestamp);
    }

    /// @inheritdoc IEnergyLoop
    function termsAt(uint256 interval) external view returns (Terms memory) {
        return _termsAt(interval);
    }

    /// @inheritdoc IEnergyLoop
    function intervalTotals(uint256 interval) external view returns (IntervalTotals memory) {
        return _totalsOf(interval);
    }

    /// @inheritdoc IEnergyLoop
    function nextIntervalToFinalize() external view returns (uint256) {
        return _progress.nextToFinalize;
    }

    /// @inheritdoc IEnergyLoop
    function nextIntervalToSettle() external view returns (uint256) {
        return _progress.nextToSettle;
    }

    /// @inheritdoc IEnergyLoop
    function settlementCursor() external view returns (SettlementCursor memory) {
        return _cursor;
    }

    /// @inheritdoc IEnergyLoop
    function ledgerBalance(address account) external view returns (int256) {
        return _accounts[account].ledger;
    }

    // ================================================================== internals

    /// @dev The current interval, or 0 before genesis (callers check genesis where it matters).
    function _currentInterval() private view returns (uint256) {
        return block.timestamp < genesis ? 0 : (block.timestamp - genesis) / intervalSeconds;
    }

    /// @dev A meter's unsettled (consumed, produced) Wh for `interval`, zero if it did not report it.
    function _energyOf(bytes32 meterId, uint256 interval) private view returns (uint256, uint256) {
        MeterCounter memory counter = _counters[meterId];
        if (counter.nextInterval == interval + 1) return (counter.consumedWh, counter.producedWh);
        Pending memory older = _older[meterId];
        if (older.interval == interval) return (older.consumedWh, older.producedWh);
        return (0, 0);
    }

    function _termsAt(uint256 interval) private view returns (Terms memory) {
        Terms memory next = _next;
        return next.epoch != 0 && interval >= next.from ? next : _current;
    }

    /// @dev A meter's (share, weight) under terms epoch `epoch`.
    function _coefficients(MeterRecord memory record, uint256 epoch) private pure returns (uint256, uint256) {
        if (record.nextEpoch != 0 && record.nextEpoch <= epoch) return (record.nextShare, record.nextWeight);
        return (record.share, record.weight);
    }

    function _totalsOf(uint256 interval) private view returns (IntervalTotals memory totals) {
        totals = _totals[interval % _TOTALS_RING];
        if (totals.interval != interval) totals = IntervalTotals(uint32(interval), 0, 0, 0, 0);
    }

    function _activeRecord(bytes32 meterId) private view returns (MeterRecord storage record) {
        record = _records[meterId];
        if (record.signer == address(0)) revert UnknownMeter(meterId);
        if (!record.active) revert MeterNotActive(meterId);
    }

    function _addShares(uint256 total, uint256 added) private pure returns (uint16) {
        total += added;
        if (total > Allocation.SHARE_DENOMINATOR) revert SharesExceedTotal(total);
        return uint16(total);
    }
}
