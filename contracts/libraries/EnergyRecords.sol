// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC1155} from "@openzeppelin/contracts/token/ERC1155/IERC1155.sol";

/// @title EnergyRecords
/// @notice Mints the loop's energy records, 1 token = 1 Wh: id 0 produced, id 1 consumed, id 2
/// self-consumed, with the standard ERC-1155 mint events.
/// @dev One slot per account holds the three balances, 80 bits each: {LoopStorage}'s bounds keep a
/// century of a loop's energy below 2^72 Wh, so the additions cannot overflow.
library EnergyRecords {
    uint256 internal constant PRODUCED = 0;
    uint256 internal constant CONSUMED = 1;
    uint256 internal constant SELF_CONSUMED = 2;

    /// @dev A member's energy token balances.
    struct Balances {
        uint80 producedWh;
        uint80 consumedWh;
        uint80 selfConsumedWh;
    }

    /// @dev Mints a consumption record to `account`: consumed Wh, the self-consumed part of them, and
    /// with them the Wh a meter that also produces produced in the same interval (0 for none).
    function mintConsumption(
        mapping(address => Balances) storage energy,
        address account,
        uint256 consumedWh,
        uint256 selfConsumedWh,
        uint256 producedWh
    ) internal {
        Balances storage a = energy[account];
        a.consumedWh += uint80(consumedWh);
        a.selfConsumedWh += uint80(selfConsumedWh);
        if (producedWh != 0) a.producedWh += uint80(producedWh);
        uint256 kinds = producedWh == 0 ? 2 : 3;
        uint256[] memory ids = new uint256[](kinds);
        uint256[] memory values = new uint256[](kinds);
        (ids[0], ids[1], values[0], values[1]) = (CONSUMED, SELF_CONSUMED, consumedWh, selfConsumedWh);
        if (producedWh != 0) (ids[2], values[2]) = (PRODUCED, producedWh);
        emit IERC1155.TransferBatch(msg.sender, address(0), account, ids, values);
    }

    /// @dev Mints a production record to `account`.
    function mintProduction(mapping(address => Balances) storage energy, address account, uint256 producedWh)
        internal
    {
        energy[account].producedWh += uint80(producedWh);
        emit IERC1155.TransferSingle(msg.sender, address(0), account, PRODUCED, producedWh);
    }
}
