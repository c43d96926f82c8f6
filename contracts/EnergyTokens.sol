// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC1155} from "@openzeppelin/contracts/token/ERC1155/IERC1155.sol";
import {IERC1155MetadataURI} from "@openzeppelin/contracts/token/ERC1155/extensions/IERC1155MetadataURI.sol";
import {ERC165, IERC165} from "@openzeppelin/contracts/utils/introspection/ERC165.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IEnergyLoop} from "./interfaces/IEnergyLoop.sol";

/// @title EnergyTokens
/// @notice The loop's energy records as ERC-1155 balances, 1 token = 1 Wh: id 0 produced, id 1 consumed,
/// id 2 self-consumed (allocated from the loop). Wallets and explorers see them through the standard
/// views and `TransferSingle`/`TransferBatch` mint events; holders cannot move them, since they record
/// measurements.
/// @dev One storage slot per account holds the three balances and the account's ledger balance, so a
/// settlement writes one slot per member. Only the loop mints, through {_record}.
abstract contract EnergyTokens is ERC165, IERC1155, IERC1155MetadataURI {
    /// @notice Token id of produced energy (Wh).
    uint256 public constant PRODUCED = 0;
    /// @notice Token id of consumed energy (Wh).
    uint256 public constant CONSUMED = 1;
    /// @notice Token id of self-consumed energy: the consumption supplied by the loop (Wh).
    uint256 public constant SELF_CONSUMED = 2;

    /// @dev A member account: energy token balances and ledger balance (settlement-token units).
    struct Account {
        uint48 producedWh;
        uint48 consumedWh;
        uint48 selfConsumedWh;
        int112 ledger;
    }

    mapping(address account => Account) internal _accounts;
    string private _uri;

    constructor(string memory uri_) {
        _uri = uri_;
    }

    /// @inheritdoc IERC1155
    function balanceOf(address account, uint256 id) public view returns (uint256) {
        Account storage a = _accounts[account];
        if (id == PRODUCED) return a.producedWh;
        if (id == CONSUMED) return a.consumedWh;
        if (id == SELF_CONSUMED) return a.selfConsumedWh;
        return 0;
    }

    /// @inheritdoc IERC1155
    function balanceOfBatch(address[] calldata accounts, uint256[] calldata ids)
        external
        view
        returns (uint256[] memory balances)
    {
        if (accounts.length != ids.length) revert IEnergyLoop.LengthMismatch();
        balances = new uint256[](accounts.length);
        for (uint256 i; i < accounts.length; ++i) {
            balances[i] = balanceOf(accounts[i], ids[i]);
        }
    }

    /// @inheritdoc IERC1155MetadataURI
    function uri(uint256) external view returns (string memory) {
        return _uri;
    }

    /// @notice Always false: energy tokens cannot be approved.
    function isApprovedForAll(address, address) external pure returns (bool) {
        return false;
    }

    /// @notice Reverts with {EnergyTokensNotTransferable}.
    function setApprovalForAll(address, bool) external pure {
        revert IEnergyLoop.EnergyTokensNotTransferable();
    }

    /// @notice Reverts with {EnergyTokensNotTransferable}.
    function safeTransferFrom(address, address, uint256, uint256, bytes calldata) external pure {
        revert IEnergyLoop.EnergyTokensNotTransferable();
    }

    /// @notice Reverts with {EnergyTokensNotTransferable}.
    function safeBatchTransferFrom(address, address, uint256[] calldata, uint256[] calldata, bytes calldata)
        external
        pure
    {
        revert IEnergyLoop.EnergyTokensNotTransferable();
    }

    /// @inheritdoc IERC165
    function supportsInterface(bytes4 interfaceId) public view virtual override(ERC165, IERC165) returns (bool) {
        return interfaceId == type(IERC1155).interfaceId || interfaceId == type(IERC1155MetadataURI).interfaceId
            || super.supportsInterface(interfaceId);
    }

    /// @dev Mints a consumption record (consumed and self-consumed Wh) to `account` and charges `cost`.
    function _recordConsumption(address account, uint256 consumedWh, uint256 selfConsumedWh, uint256 cost) internal {
        Account storage a = _accounts[account];
        a.consumedWh += SafeCast.toUint48(consumedWh);
        a.selfConsumedWh += SafeCast.toUint48(selfConsumedWh);
        a.ledger -= SafeCast.toInt112(SafeCast.toInt256(cost));
        uint256[] memory ids = new uint256[](2);
        uint256[] memory values = new uint256[](2);
        (ids[0], ids[1], values[0], values[1]) = (CONSUMED, SELF_CONSUMED, consumedWh, selfConsumedWh);
        emit TransferBatch(msg.sender, address(0), account, ids, values);
    }

    /// @dev Mints a production record to `account` and credits `revenue`.
    function _recordProduction(address account, uint256 producedWh, uint256 revenue) internal {
        Account storage a = _accounts[account];
        a.producedWh += SafeCast.toUint48(producedWh);
        a.ledger += SafeCast.toInt112(SafeCast.toInt256(revenue));
        emit TransferSingle(msg.sender, address(0), account, PRODUCED, producedWh);
    }
}
