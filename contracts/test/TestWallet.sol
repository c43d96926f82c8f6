// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title TestWallet
/// @notice A smart-contract account for tests (a Safe in miniature): ERC-1271 signatures are its owner's
/// ECDSA signatures of the digest, and its owner makes it call any contract.
contract TestWallet is IERC1271 {
    /// @notice The key that signs for the wallet and drives it.
    address public immutable owner;

    /// @notice Only the owner may make the wallet call.
    error NotOwner(address caller);

    constructor(address owner_) {
        owner = owner_;
    }

    /// @notice The ERC-1271 magic value if `signature` is the owner's over `hash`, else 0.
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        (address signer, ECDSA.RecoverError error,) = ECDSA.tryRecover(hash, signature);
        return error == ECDSA.RecoverError.NoError && signer == owner ? this.isValidSignature.selector : bytes4(0);
    }

    /// @notice Calls `target` with `data` as the wallet, bubbling a revert up. Owner only.
    function execute(address target, bytes calldata data) external returns (bytes memory) {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        (bool ok, bytes memory result) = target.call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(result, 0x20), mload(result))
            }
        }
        return result;
    }
}
