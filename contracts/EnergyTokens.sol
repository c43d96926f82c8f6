// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC1155} from "@openzeppelin/contracts/token/ERC1155/IERC1155.sol";
import {IERC1155MetadataURI} from "@openzeppelin/contracts/token/ERC1155/extensions/IERC1155MetadataURI.sol";
import {ERC165, IERC165} from "@openzeppelin/contracts/utils/introspection/ERC165.sol";
import {IEnergyLoop} from "./interfaces/IEnergyLoop.sol";
import {EnergyRecords} from "./libraries/EnergyRecords.sol";

/// @title EnergyTokens
/// @notice The loop's energy records as ERC-1155 balances, 1 token = 1 Wh: id 0 produced, id 1 consumed,
/// id 2 self-consumed (allocated from the loop). Wallets and explorers see them through the standard
/// views and `TransferSingle`/`TransferBatch` mint events; holders cannot move them, since they record
/// measurements.
/// @dev One storage slot per account holds the three balances; only the loop mints, through {EnergyRecords}.
abstract contract EnergyTokens is ERC165, IERC1155, IERC1155MetadataURI {
    /// @notice Token id of produced energy (Wh).
    uint256 public constant PRODUCED = EnergyRecords.PRODUCED;
    /// @notice Token id of consumed energy (Wh).
    uint256 public constant CONSUMED = EnergyRecords.CONSUMED;
    /// @notice Token id of self-consumed energy: the consumption supplied by the loop (Wh).
    uint256 public constant SELF_CONSUMED = EnergyRecords.SELF_CONSUMED;

    mapping(address account => EnergyRecords.Balances) internal _energy;
    string private _uri;

    constructor(string memory uri_) {
        _uri = uri_;
    }

    /// @inheritdoc IERC1155
    function balanceOf(address account, uint256 id) public view returns (uint256) {
        EnergyRecords.Balances storage a = _energy[account];
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
}
