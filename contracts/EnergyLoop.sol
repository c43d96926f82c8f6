// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IEnergyLoop} from "./interfaces/IEnergyLoop.sol";

/// @title EnergyLoop
/// @notice One collective self-consumption loop: its calendar, its allocation key and price, and the
/// registry of its members' meters. The owner is the loop's organiser (PMO); ownership moves in two
/// steps ({Ownable2Step}) so a typo cannot hand the loop to nobody.
/// @dev Meter ids are pseudonymous `bytes32` values chosen by the PMO, never the meter's PRM.
contract EnergyLoop is IEnergyLoop, Ownable2Step {
    /// @notice Shortest settlement interval accepted (one minute).
    uint32 public constant MIN_INTERVAL_SECONDS = 60;
    /// @notice Longest settlement interval accepted (one day).
    uint32 public constant MAX_INTERVAL_SECONDS = 86_400;

    /// @notice Start of interval 0 (unix seconds).
    uint64 public immutable genesis;
    /// @notice Length of a settlement interval in seconds.
    uint32 public immutable intervalSeconds;

    /// @notice The allocation key in force.
    AllocationKey public allocationKey;
    /// @notice Price of locally shared energy, in ledger units per Wh.
    uint128 public pricePerWh;

    mapping(bytes32 meterId => Meter) private _meters;
    bytes32[] private _meterIds;
    uint256 private _activeMeters;

    /// @param pmo the loop's organiser, its administrator
    /// @param genesis_ start of interval 0 (unix seconds)
    /// @param intervalSeconds_ settlement interval length
    /// @param key the allocation key
    /// @param pricePerWh_ price of locally shared energy, in ledger units per Wh
    constructor(address pmo, uint64 genesis_, uint32 intervalSeconds_, AllocationKey key, uint128 pricePerWh_)
        Ownable(pmo)
    {
        if (intervalSeconds_ < MIN_INTERVAL_SECONDS || intervalSeconds_ > MAX_INTERVAL_SECONDS) {
            revert InvalidIntervalLength(intervalSeconds_);
        }
        genesis = genesis_;
        intervalSeconds = intervalSeconds_;
        allocationKey = key;
        pricePerWh = pricePerWh_;
        emit LoopConfigured(genesis_, intervalSeconds_, key, pricePerWh_);
    }

    /// @inheritdoc IEnergyLoop
    /// @dev Reverts with {InvalidMeterId}, {InvalidMeterAccount} or {MeterAlreadyRegistered}.
    function addMeter(bytes32 meterId, address signer, address payout, MeterKind kind) external onlyOwner {
        if (meterId == bytes32(0)) revert InvalidMeterId();
        if (signer == address(0)) revert InvalidMeterAccount(signer);
        if (payout == address(0)) revert InvalidMeterAccount(payout);
        if (_meters[meterId].signer != address(0)) revert MeterAlreadyRegistered(meterId);

        _meters[meterId] = Meter({signer: signer, kind: kind, active: true, payout: payout});
        _meterIds.push(meterId);
        ++_activeMeters;
        emit MeterAdded(meterId, signer, payout, kind);
    }

    /// @inheritdoc IEnergyLoop
    /// @dev Reverts with {UnknownMeter} or {MeterNotActive}.
    function removeMeter(bytes32 meterId) external onlyOwner {
        Meter storage m = _registered(meterId);
        if (!m.active) revert MeterNotActive(meterId);
        m.active = false;
        --_activeMeters;
        emit MeterRemoved(meterId);
    }

    /// @inheritdoc IEnergyLoop
    function meter(bytes32 meterId) external view returns (Meter memory) {
        return _registered(meterId);
    }

    /// @inheritdoc IEnergyLoop
    function meterCount() external view returns (uint256) {
        return _meterIds.length;
    }

    /// @inheritdoc IEnergyLoop
    function activeMeterCount() external view returns (uint256) {
        return _activeMeters;
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

    /// @dev The meter registered under `meterId`, or a revert with {UnknownMeter}.
    function _registered(bytes32 meterId) private view returns (Meter storage m) {
        m = _meters[meterId];
        if (m.signer == address(0)) revert UnknownMeter(meterId);
    }
}
