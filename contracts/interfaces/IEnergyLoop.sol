// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IEnergyLoop
/// @notice A collective self-consumption loop (French *autoconsommation collective*): the PMO admits
/// meters; gateways sign each interval's cumulative meter indices (EIP-712); anyone submits them in
/// batches, finalizes intervals and settles them in chunks; local production is allocated to the
/// consumers by the loop's allocation key and paid for on an internal ledger.
/// @dev Every type, event and error of the loop is declared here once.
interface IEnergyLoop {
    /// @notice What a meter measures: consumption (import), production (export) or both.
    enum MeterKind {
        Consumer,
        Producer,
        Prosumer
    }

    /// @notice How an interval's local production is shared among its consumers.
    enum AllocationKey {
        Prorata,
        Static,
        Weighted
    }

    /// @notice Why a signed reading was skipped, in the order the checks run.
    enum RejectReason {
        UnknownMeter,
        BadSignature,
        MeterInactive,
        StaleInterval,
        FutureInterval,
        IntervalFinalized,
        SettlementBacklog,
        IndexDecreased,
        IndexOverflow
    }

    /// @notice A meter's cumulative indices at the end of `interval`, signed by its gateway.
    /// @dev The signature is EIP-2098 compact (`r`, `vs`) over the EIP-712 struct
    /// `Reading(bytes32 meterId,uint32 interval,uint64 importWh,uint64 exportWh)`.
    struct SignedReading {
        bytes32 meterId;
        uint32 interval;
        uint64 importWh;
        uint64 exportWh;
        bytes32 r;
        bytes32 vs;
    }

    /// @notice A meter to admit: its id, keys, kind, allocation coefficients and indices today.
    struct MeterInit {
        bytes32 meterId;
        address signer;
        address payout;
        MeterKind kind;
        uint16 share;
        uint16 weight;
        uint64 importWh;
        uint64 exportWh;
    }

    /// @notice A registered meter, as {meter} returns it.
    /// @param share static-key share in basis points; `weight` the weighted-key weight
    /// @param nextShare,nextWeight the coefficients from terms epoch `nextEpoch` on (0: none)
    /// @param nextInterval the lowest interval its next reading may name
    struct Meter {
        address signer;
        address payout;
        MeterKind kind;
        bool active;
        uint16 share;
        uint16 weight;
        uint16 nextShare;
        uint16 nextWeight;
        uint16 nextEpoch;
        uint32 nextInterval;
        uint64 importWh;
        uint64 exportWh;
    }

    /// @notice The allocation key and price in force from interval `from` (epoch 0 from the start).
    struct Terms {
        AllocationKey key;
        uint128 pricePerWh;
        uint32 from;
        uint16 epoch;
    }

    /// @notice What the meters reported for one interval.
    struct IntervalTotals {
        uint32 interval;
        uint32 reported;
        uint64 consumedWh;
        uint64 producedWh;
        uint128 weightedConsumption;
    }

    /// @notice Progress of the chunked settlement of interval {nextIntervalToSettle}.
    /// @param phase 0 while settling consumption, 1 while settling production
    struct SettlementCursor {
        uint32 position;
        uint8 phase;
        uint56 cumulativeConsumedWh;
        uint56 allocatedWh;
        uint56 cumulativeProducedWh;
    }

    // ------------------------------------------------------------------ events

    /// @notice The loop's calendar, ledger and first terms, set at deployment.
    event LoopConfigured(
        uint64 genesis, uint32 intervalSeconds, uint32 graceSeconds, address treasury, address settlementToken
    );
    /// @notice Terms (key, price) for intervals from `from` on; `epoch` numbers them.
    event TermsScheduled(uint16 indexed epoch, AllocationKey key, uint128 pricePerWh, uint32 from);
    /// @notice A meter's allocation coefficients for terms epoch `epoch` on.
    event CoefficientsScheduled(bytes32 indexed meterId, uint16 indexed epoch, uint16 share, uint16 weight);
    /// @notice The PMO admitted a meter.
    event MeterAdded(bytes32 indexed meterId, address indexed signer, address payout, MeterKind kind);
    /// @notice The PMO removed a meter; its history stays, it reports no more.
    event MeterRemoved(bytes32 indexed meterId);
    /// @notice The PMO replaced a meter's gateway key.
    event SignerRotated(bytes32 indexed meterId, address indexed previousSigner, address indexed newSigner);
    /// @notice A signed reading was recorded.
    event ReadingAccepted(bytes32 indexed meterId, uint32 indexed interval, uint64 importWh, uint64 exportWh);
    /// @notice A signed reading was skipped, for `reason`; the rest of its batch went on.
    event ReadingRejected(bytes32 indexed meterId, uint32 indexed interval, RejectReason reason);
    /// @notice No reading for `interval` is accepted any more.
    event IntervalFinalized(uint32 indexed interval, uint64 consumedWh, uint64 producedWh, uint32 reported);
    /// @notice A meter's consumption for `interval` was settled: `allocatedWh` of it came from the loop.
    event ConsumptionSettled(
        uint32 indexed interval, bytes32 indexed meterId, uint64 consumedWh, uint64 allocatedWh, uint256 cost
    );
    /// @notice A meter's production for `interval` was settled: `soldWh` of it was sold in the loop.
    event ProductionSettled(
        uint32 indexed interval, bytes32 indexed meterId, uint64 producedWh, uint64 soldWh, uint256 revenue
    );
    /// @notice Every meter of `interval` is settled.
    event IntervalSettled(uint32 indexed interval, uint64 allocatedWh);
    /// @notice `account` moved settlement tokens into its ledger balance.
    event Deposited(address indexed account, uint256 amount);
    /// @notice `account` took settlement tokens out of its ledger balance.
    event Withdrawn(address indexed account, uint256 amount);

    // ------------------------------------------------------------------ errors

    /// @notice The interval length is outside [60 s, 1 day].
    error InvalidIntervalLength(uint256 intervalSeconds);
    /// @notice A meter id must not be zero.
    error InvalidMeterId();
    /// @notice A meter's signer or payout account, or the treasury, must not be the zero address.
    error InvalidMeterAccount(address account);
    /// @notice This meter id is (or was) registered; ids are never reused.
    error MeterAlreadyRegistered(bytes32 meterId);
    /// @notice No meter was ever registered under this id.
    error UnknownMeter(bytes32 meterId);
    /// @notice The meter was removed.
    error MeterNotActive(bytes32 meterId);
    /// @notice An index past the end of the meter list.
    error MeterIndexOutOfRange(uint256 index, uint256 count);
    /// @notice A time before the start of interval 0.
    error BeforeGenesis(uint256 timestamp, uint64 genesis);
    /// @notice A static share above 10000 basis points.
    error InvalidShare(uint256 share);
    /// @notice The static shares would add up to more than 10000 basis points.
    error SharesExceedTotal(uint256 total);
    /// @notice Array arguments of different lengths.
    error LengthMismatch();
    /// @notice Terms can change only from an interval that has not started.
    error InvalidEffectiveInterval(uint256 from, uint256 current);
    /// @notice The terms scheduled from `from` are in force but intervals before it are still unsettled.
    error TermsChangePending(uint32 from);
    /// @notice Coefficients change with scheduled terms that are not yet in force; schedule terms first.
    error NoPendingTerms();
    /// @notice A batch of readings must hold at least one.
    error EmptyBatch();
    /// @notice Intervals finalize in order; `expected` is next.
    error IntervalNotNext(uint256 interval, uint256 expected);
    /// @notice The interval has not ended.
    error IntervalNotOver(uint256 interval);
    /// @notice Not every active meter reported and the grace period runs until `graceEnd`.
    error IntervalStillOpen(uint256 interval, uint256 reported, uint256 activeMeters, uint256 graceEnd);
    /// @notice Intervals settle in order, once finalized.
    error IntervalNotFinalized(uint256 interval);
    /// @notice Settlement needs at least one step.
    error ZeroSteps();
    /// @notice Amounts must not be zero.
    error ZeroAmount();
    /// @notice The loop was deployed without a settlement token: its ledger holds credits only.
    error NoSettlementToken();
    /// @notice A withdrawal larger than the account's ledger balance.
    error InsufficientBalance(address account, int256 balance, uint256 needed);
    /// @notice Energy tokens record measurements; they cannot be transferred or approved.
    error EnergyTokensNotTransferable();

    // ------------------------------------------------------------------ functions

    /// @notice Admits meters. PMO only.
    function addMeters(MeterInit[] calldata meters) external;

    /// @notice Removes a meter for good. PMO only.
    function removeMeter(bytes32 meterId) external;

    /// @notice Replaces a meter's gateway key (a lost or compromised gateway). PMO only.
    function rotateSigner(bytes32 meterId, address newSigner) external;

    /// @notice Sets the key and price for intervals from `from` (a future interval) on. PMO only.
    function scheduleTerms(AllocationKey key, uint128 pricePerWh, uint32 from) external;

    /// @notice Sets meters' static shares and weights for the scheduled terms. PMO only.
    function setCoefficients(bytes32[] calldata meterIds, uint16[] calldata shares, uint16[] calldata weights)
        external;

    /// @notice Stops accepting readings (a compromised gateway, a migration). PMO only.
    function pauseReadings() external;

    /// @notice Accepts readings again. PMO only.
    function unpauseReadings() external;

    /// @notice Records signed readings; anyone may send them. Bad ones are skipped with a reason.
    /// @return accepted how many were recorded
    function submitReadings(SignedReading[] calldata readings) external returns (uint256 accepted);

    /// @notice Closes `interval` once every active meter reported or its grace period passed. Anyone.
    function finalize(uint256 interval) external;

    /// @notice Settles up to `maxSteps` meter-sides of the next finalized interval. Anyone.
    /// @return done true when that interval is fully settled
    function settle(uint256 maxSteps) external returns (bool done);

    /// @notice Moves `amount` settlement tokens from the caller into its ledger balance.
    function deposit(uint256 amount) external;

    /// @notice Sends `amount` of the caller's ledger balance to it in settlement tokens.
    function withdraw(uint256 amount) external;

    /// @notice The meter registered under `meterId`; reverts with {UnknownMeter} if none.
    function meter(bytes32 meterId) external view returns (Meter memory);

    /// @notice How many meters were ever registered (removed ones included).
    function meterCount() external view returns (uint256);

    /// @notice How many meters are active.
    function activeMeterCount() external view returns (uint256);

    /// @notice The id of the `index`-th registered meter, in registration (and settlement) order.
    function meterIdAt(uint256 index) external view returns (bytes32);

    /// @notice The interval that contains `timestamp`; reverts with {BeforeGenesis} before interval 0.
    function intervalAt(uint256 timestamp) external view returns (uint256);

    /// @notice The interval that contains the current block.
    function currentInterval() external view returns (uint256);

    /// @notice The terms in force for `interval`.
    function termsAt(uint256 interval) external view returns (Terms memory);

    /// @notice What was reported for `interval` (zeros once it is recycled, two intervals after settlement).
    function intervalTotals(uint256 interval) external view returns (IntervalTotals memory);

    /// @notice The lowest interval not yet finalized.
    function nextIntervalToFinalize() external view returns (uint256);

    /// @notice The lowest interval not yet settled.
    function nextIntervalToSettle() external view returns (uint256);

    /// @notice The progress of the settlement under way.
    function settlementCursor() external view returns (SettlementCursor memory);

    /// @notice `account`'s ledger balance in settlement-token units (negative: it owes).
    function ledgerBalance(address account) external view returns (int256);
}
