// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {EnergyTokens} from "./EnergyTokens.sol";
import {IEnergyLoop} from "./interfaces/IEnergyLoop.sol";
import {Allocation} from "./libraries/Allocation.sol";
import {Ledger} from "./libraries/Ledger.sol";
import {LoopStorage} from "./libraries/LoopStorage.sol";
import {MeterAdmin} from "./libraries/MeterAdmin.sol";
import {Settlement} from "./libraries/Settlement.sol";
import {EnergyRecords} from "./libraries/EnergyRecords.sol";

/// @title EnergyLoop
/// @notice One collective self-consumption loop. The owner is its organiser, the PMO, who admits
/// meters and sets the terms, always a notice period ahead and under a price cap fixed at deployment;
/// ownership moves in two steps ({Ownable2Step}) and is never renounced. Readings count only when signed
/// by the meter's registered gateway key and within its physical limits. Finalizing and settling are
/// permissionless; settlement is chunked so its cost per member does not grow with the loop, and never
/// reverts for a finalized interval.
/// @dev Gas layout: a reading reads the meter's record slot and updates its counter slot (indices and
/// the interval's share) and the interval's totals (shared by the batch); a settlement step reads the
/// counter and the meter's settings and updates its payout account's energy and money slots. Nothing
/// takes a fresh slot per reading.
contract EnergyLoop is IEnergyLoop, EnergyTokens, EIP712, Ownable2Step, Pausable, ReentrancyGuard {
    using LoopStorage for LoopStorage.Calendar;

    /// @notice EIP-712 type of a reading.
    bytes32 public constant READING_TYPEHASH =
        keccak256("Reading(bytes32 meterId,uint32 interval,uint64 importWh,uint64 exportWh)");
    /// @notice A meter may report at most this many intervals past the last settled one.
    uint256 public constant SETTLEMENT_LAG = 2;
    /// @notice The shortest grace period a loop accepts: readings need time to land after an interval ends.
    uint256 public constant MIN_GRACE_SECONDS = 60;
    /// @notice The highest price cap a loop accepts (settlement-token units per Wh).
    uint256 public constant MAX_PRICE_PER_WH = 2 ** 56 - 1;

    /// @notice Start of interval 0 (unix seconds).
    uint64 public immutable genesis;
    /// @notice Length of a settlement interval in seconds.
    uint32 public immutable intervalSeconds;
    /// @notice How long after its end an interval waits for missing readings before it can be finalized.
    uint32 public immutable graceSeconds;
    /// @notice How long ahead the PMO announces new meters, key changes and terms (seconds).
    uint32 public immutable noticeSeconds;
    /// @notice The highest price the PMO may ever set (settlement-token units per Wh).
    uint64 public immutable priceCapPerWh;
    /// @notice The PMO's ledger account.
    address public immutable treasury;
    /// @notice The ERC-20 members deposit and withdraw; zero for a credits-only ledger.
    IERC20 public immutable settlementToken;

    LoopStorage.Layout private _s;
    Ledger.Layout private _ledger;

    /// @notice What the PMO chooses at deployment.
    /// @param intervalSeconds settlement interval length, 60 s to 1 day
    /// @param graceSeconds wait for missing readings after an interval's end, at least {MIN_GRACE_SECONDS}
    /// @param noticeSeconds notice of new meters, key changes and terms (days on a real loop; 0 in development)
    /// @param priceCapPerWh the highest price ever, at most {MAX_PRICE_PER_WH}
    /// @param pricePerWh price of locally shared energy in ledger units per Wh, for epoch 0
    struct Config {
        address pmo;
        address treasury;
        IERC20 token;
        uint64 genesis;
        uint32 intervalSeconds;
        uint32 graceSeconds;
        uint32 noticeSeconds;
        AllocationKey key;
        uint64 pricePerWh;
        uint64 priceCapPerWh;
    }

    constructor(Config memory c) Ownable(c.pmo) EIP712("daisee EnergyLoop", "1") EnergyTokens("") {
        if (c.intervalSeconds < 60 || c.intervalSeconds > 1 days) revert InvalidIntervalLength(c.intervalSeconds);
        if (c.graceSeconds < MIN_GRACE_SECONDS) revert GraceTooShort(c.graceSeconds, MIN_GRACE_SECONDS);
        if (c.priceCapPerWh > MAX_PRICE_PER_WH) revert PriceAboveCap(c.priceCapPerWh, MAX_PRICE_PER_WH);
        if (c.pricePerWh > c.priceCapPerWh) revert PriceAboveCap(c.pricePerWh, c.priceCapPerWh);
        if (c.treasury == address(0)) revert InvalidMeterAccount(c.treasury);
        genesis = c.genesis;
        intervalSeconds = c.intervalSeconds;
        graceSeconds = c.graceSeconds;
        noticeSeconds = c.noticeSeconds;
        priceCapPerWh = c.priceCapPerWh;
        treasury = c.treasury;
        settlementToken = c.token;
        _s.current = Terms({key: c.key, pricePerWh: c.pricePerWh, from: 0, epoch: 0});
        emit LoopConfigured(
            c.genesis, c.intervalSeconds, c.graceSeconds, c.noticeSeconds, c.priceCapPerWh, c.treasury, address(c.token)
        );
        emit TermsScheduled(0, c.key, c.pricePerWh, 0);
    }

    // ================================================================== PMO

    /// @inheritdoc IEnergyLoop
    /// @dev Reverts with {InvalidMeterId}, {InvalidMeterAccount}, {MeterAlreadyRegistered}, {InvalidShare},
    /// {InvalidMeterLimits}, {TooManyMeters} or {SharesExceedTotal}.
    function addMeters(MeterInit[] calldata meters) external onlyOwner {
        MeterAdmin.addMeters(_s, _calendar(), meters);
    }

    /// @inheritdoc IEnergyLoop
    /// @dev Reverts with {UnknownMeter} or {MeterNotActive}.
    function removeMeter(bytes32 meterId) external onlyOwner {
        MeterAdmin.removeMeter(_s, meterId);
    }

    /// @inheritdoc IEnergyLoop
    /// @dev Reverts with {UnknownMeter}, {MeterNotActive} or {InvalidMeterAccount}. Replaces any change
    /// announced before.
    function rotateSigner(bytes32 meterId, address newSigner) external onlyOwner {
        MeterAdmin.scheduleChange(_s, _calendar(), meterId, MeterChange(newSigner, 0, false, 0, 0));
    }

    /// @inheritdoc IEnergyLoop
    /// @dev As {rotateSigner}; from when it takes effect, readings count from these indices.
    function repairMeter(bytes32 meterId, address newSigner, uint64 importWh, uint64 exportWh) external onlyOwner {
        MeterAdmin.scheduleChange(_s, _calendar(), meterId, MeterChange(newSigner, 0, true, importWh, exportWh));
    }

    /// @inheritdoc IEnergyLoop
    function cancelMeterChange(bytes32 meterId) external onlyOwner {
        if (_s.changes[meterId].signer == address(0)) revert NoMeterChange(meterId);
        delete _s.changes[meterId];
        emit MeterChangeCancelled(meterId);
    }

    /// @inheritdoc IEnergyLoop
    /// @dev Reverts with {NotMeterPayout}, {MeterChangeMismatch} or {NoMeterChange}.
    function confirmMeterChange(bytes32 meterId, address signer, bool reset, uint64 importWh, uint64 exportWh)
        external
    {
        LoopStorage.MeterRecord memory record = _s.records[meterId];
        if (record.signer == address(0) || msg.sender != _s.settings[record.index].payout) {
            revert NotMeterPayout(meterId, msg.sender);
        }
        MeterChange memory c = _s.changes[meterId];
        bool same = c.signer == signer && c.reset == reset && c.importWh == importWh && c.exportWh == exportWh;
        if (c.signer != address(0) && !same) revert MeterChangeMismatch(meterId, c.signer);
        MeterAdmin.applyChange(_s, meterId, true);
    }

    /// @inheritdoc IEnergyLoop
    /// @dev Reverts with {NoMeterChange} or {MeterChangeNotDue}.
    function applyMeterChange(bytes32 meterId) external {
        MeterAdmin.applyChange(_s, meterId, false);
    }

    /// @inheritdoc IEnergyLoop
    /// @dev Reverts with {PriceAboveCap}, {InvalidEffectiveInterval} or {TermsChangePending}.
    function scheduleTerms(AllocationKey key, uint64 pricePerWh, uint32 from) external onlyOwner {
        MeterAdmin.scheduleTerms(_s, _calendar(), key, pricePerWh, from);
    }

    /// @inheritdoc IEnergyLoop
    /// @dev Reverts with {LengthMismatch}, {NoPendingTerms}, {UnknownMeter}, {MeterNotActive},
    /// {InvalidShare} or {SharesExceedTotal}.
    function setCoefficients(bytes32[] calldata meterIds, uint16[] calldata shares, uint16[] calldata weights)
        external
        onlyOwner
    {
        MeterAdmin.setCoefficients(_s, _calendar(), meterIds, shares, weights);
    }

    /// @inheritdoc IEnergyLoop
    function pauseReadings() external onlyOwner {
        _pause();
    }

    /// @inheritdoc IEnergyLoop
    function unpauseReadings() external onlyOwner {
        _unpause();
    }

    /// @notice Always reverts with {OwnershipCannotBeRenounced}: a loop always has a PMO.
    function renounceOwnership() public pure override {
        revert OwnershipCannotBeRenounced();
    }

    // ================================================================== readings

    /// @inheritdoc IEnergyLoop
    /// @dev Checks run in {RejectReason} order; a skipped reading emits {ReadingRejected} and changes
    /// nothing, an accepted one emits {ReadingAccepted}. Reverts only with {EmptyBatch} or when paused.
    function submitReadings(SignedReading[] calldata readings) external whenNotPaused returns (uint256 accepted) {
        if (readings.length == 0) revert EmptyBatch();
        uint256 current = _calendar().currentInterval();
        LoopStorage.Progress memory p = _s.progress;
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
    function _record(SignedReading calldata r, uint256 current, LoopStorage.Progress memory p)
        private
        returns (bool, RejectReason)
    {
        (bool ok, RejectReason reason, uint256 consumed, uint256 produced) = _check(r, current, p);
        if (ok) _accept(r, _s.records[r.meterId], p, consumed, produced);
        return (ok, reason);
    }

    /// @dev The first check `r` fails, or (true, _, the energy since the meter's last accepted reading).
    function _check(SignedReading calldata r, uint256 current, LoopStorage.Progress memory p)
        private
        view
        returns (bool, RejectReason, uint256 consumed, uint256 produced)
    {
        LoopStorage.MeterRecord memory record = _s.records[r.meterId];
        if (record.signer == address(0)) return (false, RejectReason.UnknownMeter, 0, 0);
        bytes32 digest = _hashTypedDataV4(
            keccak256(abi.encode(READING_TYPEHASH, r.meterId, r.interval, r.importWh, r.exportWh))
        );
        (address signer, ECDSA.RecoverError error,) = ECDSA.tryRecover(digest, r.r, r.vs);
        if (error != ECDSA.RecoverError.NoError || signer != record.signer) return (false, RejectReason.BadSignature, 0, 0);
        if (record.activeFrom == LoopStorage.REMOVED) return (false, RejectReason.MeterInactive, 0, 0);
        uint256 t = r.interval;
        if (t < record.activeFrom) return (false, RejectReason.NotYetActive, 0, 0);
        LoopStorage.MeterCounter memory counter = _s.counters[record.index];
        if (t < counter.nextInterval) return (false, RejectReason.StaleInterval, 0, 0);
        if (t >= current) return (false, RejectReason.FutureInterval, 0, 0);
        if (t < p.nextToFinalize) return (false, RejectReason.IntervalFinalized, 0, 0);
        if (t >= p.nextToSettle + SETTLEMENT_LAG) return (false, RejectReason.SettlementBacklog, 0, 0);
        if (r.importWh < counter.importWh || r.exportWh < counter.exportWh) return (false, RejectReason.IndexDecreased, 0, 0);
        consumed = r.importWh - counter.importWh;
        produced = r.exportWh - counter.exportWh;
        if ((consumed != 0 && record.importLimitW == 0) || (produced != 0 && record.exportLimitW == 0)) {
            return (false, RejectReason.FlowNotAllowed, 0, 0);
        }
        // the energy since the last accepted reading, or the admission, is at most limit × elapsed time
        uint256 elapsed = (t + 1 - counter.nextInterval) * intervalSeconds;
        if (consumed * 1 hours > record.importLimitW * elapsed || produced * 1 hours > record.exportLimitW * elapsed) {
            return (false, RejectReason.AboveMeterLimit, 0, 0);
        }
        return (true, RejectReason.UnknownMeter, consumed, produced); // the reason is unused
    }

    /// @dev Records a reading that passed {_check}. One that covers n intervals takes part in its
    /// interval's allocation with 1/n of its energy; the rest, the earlier intervals' share, is booked at
    /// once as energy from and to the grid ({EnergyCarried}).
    function _accept(
        SignedReading calldata r,
        LoopStorage.MeterRecord memory record,
        LoopStorage.Progress memory p,
        uint256 consumed,
        uint256 produced
    ) private {
        uint256 index = record.index;
        LoopStorage.MeterCounter memory counter = _s.counters[index];
        if (LoopStorage.hasReported(record, counter) && counter.nextInterval > p.nextToSettle) {
            // the last reported interval is not settled yet: keep its energy aside (the slot is free, since
            // SETTLEMENT_LAG leaves at most one older unsettled interval)
            _s.older[index] =
                LoopStorage.Pending(counter.nextInterval - 1, counter.consumedWh, counter.producedWh, true);
        }
        uint256 t = r.interval;
        uint256 covered = t + 1 - counter.nextInterval;
        if (covered > 1) {
            _carry(r.meterId, index, t, counter.nextInterval, consumed, produced, covered);
            (consumed, produced) = (consumed / covered, produced / covered);
        }
        // the shares fit in 48 bits: at most 2^24 W over one day
        _s.counters[index] =
            LoopStorage.MeterCounter(r.interval + 1, r.importWh, r.exportWh, uint48(consumed), uint48(produced));
        IntervalTotals storage totals = _s.totals[t % LoopStorage.TOTALS_RING];
        if (totals.interval != t) _s.totals[t % LoopStorage.TOTALS_RING] = IntervalTotals(r.interval, 0, 0, 0, 0);
        // cannot overflow: at most MAX_METERS readings of at most 2^29 Wh each
        totals.reported += 1;
        totals.consumedWh += uint64(consumed);
        totals.producedWh += uint64(produced);
        Terms memory terms = LoopStorage.termsAt(_s, t);
        if (consumed != 0 && terms.key == AllocationKey.Weighted) {
            (, uint256 weight) = LoopStorage.coefficients(_s.settings[index], terms.epoch);
            totals.weightedConsumption += uint128(weight * consumed);
        }
    }

    /// @dev Books the energy of the intervals before `t` that a reading covers: grid energy, not shared.
    function _carry(
        bytes32 meterId,
        uint256 index,
        uint256 t,
        uint256 from,
        uint256 consumed,
        uint256 produced,
        uint256 covered
    ) private {
        uint256 carriedConsumed = consumed - consumed / covered;
        uint256 carriedProduced = produced - produced / covered;
        if ((carriedConsumed | carriedProduced) == 0) return;
        address payout = _s.settings[index].payout;
        if (carriedConsumed != 0) EnergyRecords.mintConsumption(_energy, payout, carriedConsumed, 0, 0);
        if (carriedProduced != 0) EnergyRecords.mintProduction(_energy, payout, carriedProduced);
        emit EnergyCarried(meterId, uint32(t), uint32(from), uint64(carriedConsumed), uint64(carriedProduced));
    }

    // ================================================================== finalize and settle

    /// @inheritdoc IEnergyLoop
    /// @dev Meters admitted for `interval` start counting here. Reverts with {IntervalNotNext},
    /// {IntervalNotOver} or {IntervalStillOpen}.
    function finalize(uint256 interval) external {
        LoopStorage.Progress memory p = _s.progress;
        if (interval != p.nextToFinalize) revert IntervalNotNext(interval, p.nextToFinalize);
        if (block.timestamp < genesis || interval >= _calendar().currentInterval()) revert IntervalNotOver(interval);
        uint256 joining = _s.joining[interval];
        if (joining != 0) {
            p.activeMeters += uint32(joining);
            delete _s.joining[interval];
        }
        IntervalTotals memory totals = LoopStorage.totalsOf(_s, interval);
        uint256 graceEnd = genesis + (interval + 1) * intervalSeconds + graceSeconds;
        if (totals.reported < p.activeMeters && block.timestamp < graceEnd) {
            revert IntervalStillOpen(interval, totals.reported, p.activeMeters, graceEnd);
        }
        p.nextToFinalize = uint32(interval + 1);
        _s.progress = p;
        emit IntervalFinalized(uint32(interval), totals.consumedWh, totals.producedWh, totals.reported);
    }

    /// @inheritdoc IEnergyLoop
    /// @dev See {Settlement-settle}. Reverts only with {ZeroSteps} or {IntervalNotFinalized}.
    function settle(uint256 maxSteps) external returns (bool done) {
        return Settlement.settle(_s, _ledger, _energy, maxSteps, address(settlementToken) != address(0));
    }

    // ================================================================== ledger

    /// @inheritdoc IEnergyLoop
    /// @dev Reverts with {ZeroAmount} or {NoSettlementToken}; the token must be approved first.
    function deposit(uint256 amount) external nonReentrant {
        Ledger.deposit(_ledger, settlementToken, msg.sender, amount);
    }

    /// @inheritdoc IEnergyLoop
    /// @dev As {deposit}; reverts with {InvalidMeterAccount} for the zero address.
    function depositFor(address account, uint256 amount) external nonReentrant {
        if (account == address(0)) revert InvalidMeterAccount(account);
        Ledger.deposit(_ledger, settlementToken, account, amount);
    }

    /// @inheritdoc IEnergyLoop
    /// @dev Never paused. Reverts with {ZeroAmount}, {NoSettlementToken} or {InsufficientBalance}.
    function withdraw(uint256 amount) external nonReentrant {
        Ledger.withdraw(_ledger, settlementToken, amount);
    }

    /// @inheritdoc IEnergyLoop
    function payReceivables(uint256 maxClaims) external nonReentrant returns (uint256 paid) {
        return Ledger.payReceivables(_ledger, maxClaims);
    }

    /// @inheritdoc IEnergyLoop
    function accountBalance(address account) external view returns (AccountBalance memory) {
        return Ledger.balanceOf(_ledger, account);
    }

    /// @inheritdoc IEnergyLoop
    function ledgerBalance(address account) external view returns (int256) {
        AccountBalance memory a = Ledger.balanceOf(_ledger, account);
        return int256(a.balance + a.receivable) - int256(uint256(a.debt));
    }

    /// @inheritdoc IEnergyLoop
    function receivablesQueue() external view returns (uint256 recovered, uint256 claims) {
        Ledger.Books memory books = _ledger.books;
        return (books.recovered, books.tail - books.head);
    }

    /// @inheritdoc IEnergyLoop
    function receivableDue() external view returns (uint256) {
        return Ledger.due(_ledger);
    }

    // ================================================================== views

    /// @inheritdoc IEnergyLoop
    function meter(bytes32 meterId) external view returns (Meter memory) {
        LoopStorage.MeterRecord memory r = _s.records[meterId];
        if (r.signer == address(0)) revert UnknownMeter(meterId);
        LoopStorage.MeterCounter memory c = _s.counters[r.index];
        LoopStorage.MeterSettings memory m = _s.settings[r.index];
        bool active = r.activeFrom != LoopStorage.REMOVED;
        return Meter(
            r.signer,
            m.payout,
            LoopStorage.kindOf(r),
            active,
            r.importLimitW,
            r.exportLimitW,
            active ? r.activeFrom : 0,
            m.share,
            m.weight,
            m.nextShare,
            m.nextWeight,
            m.nextEpoch,
            c.nextInterval,
            c.importWh,
            c.exportWh
        );
    }

    /// @inheritdoc IEnergyLoop
    function meterChange(bytes32 meterId) external view returns (MeterChange memory) {
        return _s.changes[meterId];
    }

    /// @inheritdoc IEnergyLoop
    function meterCount() external view returns (uint256) {
        return _s.meterIds.length;
    }

    /// @inheritdoc IEnergyLoop
    function activeMeterCount() external view returns (uint256) {
        return _s.progress.activeMeters;
    }

    /// @inheritdoc IEnergyLoop
    function meterIdAt(uint256 index) external view returns (bytes32) {
        if (index >= _s.meterIds.length) revert MeterIndexOutOfRange(index, _s.meterIds.length);
        return _s.meterIds[index];
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
        return LoopStorage.termsAt(_s, interval);
    }

    /// @inheritdoc IEnergyLoop
    function intervalTotals(uint256 interval) external view returns (IntervalTotals memory) {
        return LoopStorage.totalsOf(_s, interval);
    }

    /// @inheritdoc IEnergyLoop
    function nextIntervalToFinalize() external view returns (uint256) {
        return _s.progress.nextToFinalize;
    }

    /// @inheritdoc IEnergyLoop
    function nextIntervalToSettle() external view returns (uint256) {
        return _s.progress.nextToSettle;
    }

    /// @inheritdoc IEnergyLoop
    function settlementCursor() external view returns (SettlementCursor memory) {
        return _s.cursor;
    }

    // ================================================================== internals

    function _calendar() private view returns (LoopStorage.Calendar memory) {
        return LoopStorage.Calendar(genesis, intervalSeconds, noticeSeconds, priceCapPerWh);
    }

}
