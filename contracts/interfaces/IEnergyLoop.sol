// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IEnergyLoop
/// @notice A collective self-consumption loop (French *autoconsommation collective*): one organiser,
/// the PMO, admits the meters of producers and consumers that share local energy.
/// @dev Every event and error of the loop is declared here once.
interface IEnergyLoop {
    /// @notice What a meter measures: consumption (import), production (export) or both.
    enum MeterKind {
        Consumer,
        Producer,
        Prosumer
    }

    /// @notice How the local production is shared among the consumers of an interval.
    enum AllocationKey {
        Prorata,
        Static,
        Weighted
    }

    /// @notice A registered meter.
    /// @param signer the gateway key that signs this meter's readings
    /// @param kind what the meter measures
    /// @param active false once the PMO has removed it
    /// @param payout the account that owes or earns this meter's money
    struct Meter {
        address signer;
        MeterKind kind;
        bool active;
        address payout;
    }

    /// @notice The loop's settlement calendar and pricing, set at deployment.
    event LoopConfigured(uint64 genesis, uint32 intervalSeconds, AllocationKey key, uint128 pricePerWh);
    /// @notice The PMO admitted a meter.
    event MeterAdded(bytes32 indexed meterId, address indexed signer, address payout, MeterKind kind);
    /// @notice The PMO removed a meter; its history stays, it reports no more.
    event MeterRemoved(bytes32 indexed meterId);

    /// @notice The interval length is outside [MIN_INTERVAL_SECONDS, MAX_INTERVAL_SECONDS].
    error InvalidIntervalLength(uint256 intervalSeconds);
    /// @notice A meter id must not be zero.
    error InvalidMeterId();
    /// @notice A meter's signer or payout account must not be the zero address.
    error InvalidMeterAccount(address account);
    /// @notice This meter id is (or was) registered; ids are never reused.
    error MeterAlreadyRegistered(bytes32 meterId);
    /// @notice No meter was ever registered under this id.
    error UnknownMeter(bytes32 meterId);
    /// @notice The meter was already removed.
    error MeterNotActive(bytes32 meterId);
    /// @notice A time before the start of interval 0.
    error BeforeGenesis(uint256 timestamp, uint64 genesis);
    /// @notice An index past the end of the meter list.
    error MeterIndexOutOfRange(uint256 index, uint256 count);

    /// @notice Admits a meter. PMO only.
    function addMeter(bytes32 meterId, address signer, address payout, MeterKind kind) external;

    /// @notice Removes a meter for good. PMO only.
    function removeMeter(bytes32 meterId) external;

    /// @notice The meter registered under `meterId`; reverts with {UnknownMeter} if none.
    function meter(bytes32 meterId) external view returns (Meter memory);

    /// @notice How many meters were ever registered (removed ones included).
    function meterCount() external view returns (uint256);

    /// @notice How many meters are active.
    function activeMeterCount() external view returns (uint256);

    /// @notice The id of the `index`-th registered meter, in registration order.
    function meterIdAt(uint256 index) external view returns (bytes32);

    /// @notice The interval that contains `timestamp`; reverts with {BeforeGenesis} before interval 0.
    function intervalAt(uint256 timestamp) external view returns (uint256);

    /// @notice The interval that contains the current block.
    function currentInterval() external view returns (uint256);
}
