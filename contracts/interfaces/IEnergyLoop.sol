// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IEnergyLoop
/// @notice A collective self-consumption loop (French *autoconsommation collective*): the PMO admits
/// meters with their physical limits; gateways sign each interval's cumulative meter indices (EIP-712);
/// anyone submits them in batches, finalizes intervals and settles them in chunks; local production is
/// allocated to the consumers by the loop's allocation key and paid for, from what the consumers
/// actually paid, on a ledger that is always solvent.
/// @dev Every type, event and error of the loop is declared here once.
interface IEnergyLoop {
    /// @notice What a meter measures: consumption (import), production (export) or both. It follows
    /// from the meter's limits: a consumer's export limit is 0, a producer's import limit is 0.
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
        NotYetActive,
        StaleInterval,
        FutureInterval,
        IntervalFinalized,
        SettlementBacklog,
        IndexDecreased,
        FlowNotAllowed,
        AboveMeterLimit
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

    /// @notice A meter to admit: its id, keys, kind, physical limits, allocation coefficients and
    /// indices today.
    /// @param importLimitW subscribed import power (W; the Linky's kVA × 1000), 0 for a producer
    /// @param exportLimitW installed export peak (W; kWc × 1000), 0 for a consumer
    struct MeterInit {
        bytes32 meterId;
        address signer;
        address payout;
        MeterKind kind;
        uint32 importLimitW;
        uint32 exportLimitW;
        uint16 share;
        uint16 weight;
        uint64 importWh;
        uint64 exportWh;
    }

    /// @notice A registered meter, as {meter} returns it.
    /// @param activeFrom the first interval it may report (its admission takes effect after the notice)
    /// @param share static-key share in basis points; `weight` the weighted-key weight
    /// @param nextShare,nextWeight the coefficients from terms epoch `nextEpoch` on (0: none)
    /// @param nextInterval the lowest interval its next reading may name; its energy counts from there
    struct Meter {
        address signer;
        address payout;
        MeterKind kind;
        bool active;
        uint32 importLimitW;
        uint32 exportLimitW;
        uint32 activeFrom;
        uint16 share;
        uint16 weight;
        uint16 nextShare;
        uint16 nextWeight;
        uint16 nextEpoch;
        uint32 nextInterval;
        uint64 importWh;
        uint64 exportWh;
    }

    /// @notice A change of a meter's gateway key, and with `reset` of its indices (a swapped or
    /// repaired meter), that takes effect at `effectiveAt` or when its payout account confirms it.
    struct MeterChange {
        address signer;
        uint40 effectiveAt;
        bool reset;
        uint64 importWh;
        uint64 exportWh;
    }

    /// @notice The allocation key and price in force from interval `from` (epoch 0 from the start).
    struct Terms {
        AllocationKey key;
        uint64 pricePerWh;
        uint32 from;
        uint16 epoch;
    }

    /// @notice What the meters reported for one interval (each meter's share of it, see {EnergyCarried}).
    struct IntervalTotals {
        uint32 interval;
        uint32 reported;
        uint64 consumedWh;
        uint64 producedWh;
        uint128 weightedConsumption;
    }

    /// @notice Progress of the chunked settlement of interval {nextIntervalToSettle}.
    /// @param phase 0 while settling consumption, 1 while settling production
    /// @param collected what the interval's consumers paid so far; producers share it
    struct SettlementCursor {
        uint32 position;
        uint8 phase;
        uint64 cumulativeConsumedWh;
        uint64 allocatedWh;
        uint64 cumulativeProducedWh;
        uint64 cumulativeSoldWh;
        uint128 collected;
    }

    /// @notice A member's money in the loop, in settlement-token units.
    /// @param balance what it may withdraw
    /// @param debt what it owes for energy its balance did not cover; repaid first from what it receives
    /// @param receivable what the loop owes it from other members' debts; paid as they repay, oldest first
    struct AccountBalance {
        uint128 balance;
        uint128 debt;
        uint256 receivable;
    }

    // ------------------------------------------------------------------ events

    /// @notice The loop's calendar, ledger and bounds of the PMO's powers, set at deployment.
    event LoopConfigured(
        uint64 genesis,
        uint32 intervalSeconds,
        uint32 graceSeconds,
        uint32 noticeSeconds,
        uint64 priceCapPerWh,
        address treasury,
        address settlementToken
    );
    /// @notice Terms (key, price) for intervals from `from` on; `epoch` numbers them.
    event TermsScheduled(uint16 indexed epoch, AllocationKey key, uint64 pricePerWh, uint32 from);
    /// @notice A meter's allocation coefficients for terms epoch `epoch` on.
    event CoefficientsScheduled(bytes32 indexed meterId, uint16 indexed epoch, uint16 share, uint16 weight);
    /// @notice The PMO admitted a meter; it may report from interval `activeFrom`. `index` is its place in
    /// the registry ({meterIdAt}), which {MetersSettled} names it by.
    event MeterAdded(
        bytes32 indexed meterId,
        address indexed signer,
        address payout,
        MeterKind kind,
        uint32 importLimitW,
        uint32 exportLimitW,
        uint32 activeFrom,
        uint16 index
    );
    /// @notice The PMO removed a meter; its history stays, it reports no more.
    event MeterRemoved(bytes32 indexed meterId);
    /// @notice The PMO announced a change of a meter's key (and indices, with `reset`).
    event MeterChangeScheduled(
        bytes32 indexed meterId, address indexed newSigner, bool reset, uint64 importWh, uint64 exportWh, uint40 effectiveAt
    );
    /// @notice The PMO withdrew a change it had announced.
    event MeterChangeCancelled(bytes32 indexed meterId);
    /// @notice A meter's key (and indices) changed; `confirmed` when its payout account agreed.
    event MeterChanged(bytes32 indexed meterId, address indexed previousSigner, address indexed newSigner, bool confirmed);
    /// @notice A signed reading was recorded.
    event ReadingAccepted(bytes32 indexed meterId, uint32 indexed interval, uint64 importWh, uint64 exportWh);
    /// @notice A signed reading was skipped, for `reason`; the rest of its batch went on.
    event ReadingRejected(bytes32 indexed meterId, uint32 indexed interval, RejectReason reason);
    /// @notice A reading covered intervals `fromInterval` to `interval`: only `interval`'s share of its
    /// energy takes part in that interval's allocation; this energy, of the earlier intervals, went to
    /// and came from the grid.
    event EnergyCarried(
        bytes32 indexed meterId, uint32 indexed interval, uint32 fromInterval, uint64 consumedWh, uint64 producedWh
    );
    /// @notice No reading for `interval` is accepted any more.
    event IntervalFinalized(uint32 indexed interval, uint64 consumedWh, uint64 producedWh, uint32 reported);
    /// @notice Meter-sides of `interval` that one settlement transaction settled, in settlement order, one
    /// word each, from the lowest bits: the meter's index in the registry (16 bits, {MeterAdded}), the side
    /// (8 bits: 0 consumption, 1 production), its energy (48 bits: Wh consumed, or produced), its local
    /// energy (48 bits: Wh allocated from the loop, or sold in it) and what was paid (136 bits: from the
    /// member's balance, the rest of the cost became a debt; or to the producer from what the consumers
    /// paid, the rest became a receivable). A side's cost, or revenue, is its local energy × `pricePerWh`.
    /// @dev One word a side instead of an event a side: a log costs 375 gas and 375 a topic, a word 256.
    event MetersSettled(uint32 indexed interval, uint64 pricePerWh, uint256[] records);
    /// @notice Every meter of `interval` is settled.
    event IntervalSettled(uint32 indexed interval, uint64 allocatedWh);
    /// @notice `payer` moved settlement tokens into `account`'s ledger (`received` is what arrived).
    event Deposited(address indexed account, address indexed payer, uint256 received);
    /// @notice `account` took settlement tokens out of its balance.
    event Withdrawn(address indexed account, uint256 amount);
    /// @notice `account` repaid `amount` of its debt.
    event DebtRepaid(address indexed account, uint256 amount);
    /// @notice `account` was paid `amount` of its receivable from repaid debts.
    event ReceivablePaid(address indexed account, uint256 amount);

    // ------------------------------------------------------------------ errors

    /// @notice The interval length is outside [60 s, 1 day].
    error InvalidIntervalLength(uint256 intervalSeconds);
    /// @notice The grace period is shorter than {MIN_GRACE_SECONDS}: readings could not land in time.
    error GraceTooShort(uint256 graceSeconds, uint256 minimum);
    /// @notice The price is above the loop's cap, or the cap above {MAX_PRICE_PER_WH}.
    error PriceAboveCap(uint256 pricePerWh, uint256 cap);
    /// @notice A meter id must not be zero.
    error InvalidMeterId();
    /// @notice A meter's signer or payout account, or the treasury, must not be the zero address.
    error InvalidMeterAccount(address account);
    /// @notice The limits do not fit the kind (a consumer exports nothing, a producer imports nothing,
    /// and every other flow needs a limit above zero), or one is 2^24 W (16.7 MW) or more.
    error InvalidMeterLimits(MeterKind kind, uint256 importLimitW, uint256 exportLimitW);
    /// @notice This meter id is (or was) registered; ids are never reused.
    error MeterAlreadyRegistered(bytes32 meterId);
    /// @notice No meter was ever registered under this id.
    error UnknownMeter(bytes32 meterId);
    /// @notice The meter was removed.
    error MeterNotActive(bytes32 meterId);
    /// @notice The loop holds {MAX_METERS} meters already.
    error TooManyMeters(uint256 max);
    /// @notice No change is scheduled for this meter.
    error NoMeterChange(bytes32 meterId);
    /// @notice The change takes effect at `effectiveAt`, not before (unless the member confirms it).
    error MeterChangeNotDue(bytes32 meterId, uint256 effectiveAt);
    /// @notice The change announced for this meter is not the one confirmed (`signer` is the announced key).
    error MeterChangeMismatch(bytes32 meterId, address signer);
    /// @notice Only the meter's payout account may confirm a change of its meter.
    error NotMeterPayout(bytes32 meterId, address caller);
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
    /// @notice Terms change only from an interval that starts after the notice period, at `earliest`.
    error InvalidEffectiveInterval(uint256 from, uint256 earliest);
    /// @notice The terms scheduled from `from` are in force but intervals before it are still unsettled.
    error TermsChangePending(uint32 from);
    /// @notice Coefficients change with scheduled terms that are at least the notice period away.
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
    /// @notice A withdrawal larger than the account's balance.
    error InsufficientBalance(address account, uint256 balance, uint256 needed);
    /// @notice A loop always has a PMO: ownership moves ({transferOwnership}), it is never renounced.
    error OwnershipCannotBeRenounced();
    /// @notice Energy tokens record measurements; they cannot be transferred or approved.
    error EnergyTokensNotTransferable();

    // ------------------------------------------------------------------ functions

    /// @notice Admits meters; each may report from the interval after the notice period. PMO only.
    function addMeters(MeterInit[] calldata meters) external;

    /// @notice Removes a meter for good; its unsettled energy is still settled. PMO only.
    function removeMeter(bytes32 meterId) external;

    /// @notice Announces a new gateway key for a meter (a lost or compromised gateway), effective after
    /// the notice period or when the member confirms it. PMO only.
    function rotateSigner(bytes32 meterId, address newSigner) external;

    /// @notice Announces a repaired or swapped meter: a new key and the indices it counts from now.
    /// Effective after the notice period or when the member confirms it. PMO only.
    function repairMeter(bytes32 meterId, address newSigner, uint64 importWh, uint64 exportWh) external;

    /// @notice Withdraws an announced meter change. PMO only.
    function cancelMeterChange(bytes32 meterId) external;

    /// @notice The member agrees to the announced change of its meter, which it names (so that a change
    /// announced in its place cannot ride on the confirmation): it takes effect now. Payout only.
    function confirmMeterChange(bytes32 meterId, address signer, bool reset, uint64 importWh, uint64 exportWh)
        external;

    /// @notice Puts an announced meter change into effect once its notice has passed. Anyone.
    function applyMeterChange(bytes32 meterId) external;

    /// @notice Sets the key and price (at most the cap) for intervals from `from` on; `from` must start
    /// at least the notice period from now. PMO only.
    function scheduleTerms(AllocationKey key, uint64 pricePerWh, uint32 from) external;

    /// @notice Sets meters' static shares and weights for the scheduled terms. PMO only.
    function setCoefficients(bytes32[] calldata meterIds, uint16[] calldata shares, uint16[] calldata weights)
        external;

    /// @notice Stops accepting readings (a compromised gateway, a migration); money moves on. PMO only.
    function pauseReadings() external;

    /// @notice Accepts readings again. PMO only.
    function unpauseReadings() external;

    /// @notice Records signed readings; anyone may send them. Bad ones are skipped with a reason.
    /// @return accepted how many were recorded
    function submitReadings(SignedReading[] calldata readings) external returns (uint256 accepted);

    /// @notice Closes `interval` once every active meter reported or its grace period passed. Anyone.
    function finalize(uint256 interval) external;

    /// @notice Settles up to `maxSteps` meter-sides of the next finalized interval. Anyone; never reverts
    /// for a finalized interval.
    /// @return done true when that interval is fully settled
    function settle(uint256 maxSteps) external returns (bool done);

    /// @notice Moves `amount` settlement tokens from the caller into the loop: its debt first, then its
    /// balance.
    function deposit(uint256 amount) external;

    /// @notice Moves `amount` settlement tokens from the caller into `account`'s: its debt first, then its
    /// balance (a PMO or a fund prepaying a household's energy).
    function depositFor(address account, uint256 amount) external;

    /// @notice Sends `amount` of the caller's balance to it in settlement tokens; paused or not.
    function withdraw(uint256 amount) external;

    /// @notice Settles receivables, oldest first, up to `maxClaims` of them: a holder's own debt is netted
    /// against its claim, the rest paid from repaid debts. Anyone.
    /// @return paid how much of the receivables was settled
    function payReceivables(uint256 maxClaims) external returns (uint256 paid);

    /// @notice The meter registered under `meterId`; reverts with {UnknownMeter} if none.
    function meter(bytes32 meterId) external view returns (Meter memory);

    /// @notice The change announced for `meterId` (a zero signer: none).
    function meterChange(bytes32 meterId) external view returns (MeterChange memory);

    /// @notice How many meters were ever registered (removed ones included).
    function meterCount() external view returns (uint256);

    /// @notice How many meters count for finalization (admitted, in effect, not removed).
    function activeMeterCount() external view returns (uint256);

    /// @notice The id of the `index`-th registered meter, in registration order.
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

    /// @notice `account`'s balance, debt and receivable.
    function accountBalance(address account) external view returns (AccountBalance memory);

    /// @notice `account`'s net position: balance + receivable − debt (negative: it owes).
    function ledgerBalance(address account) external view returns (int256);

    /// @notice Repaid debts waiting for {payReceivables}, and how many receivables are outstanding.
    function receivablesQueue() external view returns (uint256 recovered, uint256 claims);

    /// @notice How much of the oldest receivable {payReceivables} would settle now (0: nothing to do).
    function receivableDue() external view returns (uint256);
}
