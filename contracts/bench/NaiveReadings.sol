// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title NaiveReadings
/// @notice The benchmark's baseline, shaped like the DAISEE prototypes: every meter sends its own
/// unsigned transaction per reading and each reading takes fresh storage. Nothing authenticates it:
/// never use it for anything but a gas comparison.
contract NaiveReadings {
    struct Reading {
        uint64 importWh;
        uint64 exportWh;
    }

    mapping(bytes32 meterId => mapping(uint256 interval => Reading)) public readings;

    /// @notice A reading was declared.
    event Declared(bytes32 indexed meterId, uint256 indexed interval, uint64 importWh, uint64 exportWh);

    /// @notice Declares a meter's indices for an interval, as anyone.
    function declare(bytes32 meterId, uint256 interval, uint64 importWh, uint64 exportWh) external {
        readings[meterId][interval] = Reading(importWh, exportWh);
        emit Declared(meterId, interval, importWh, exportWh);
    }
}
