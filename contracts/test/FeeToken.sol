// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title FeeToken
/// @notice A test token that burns 1 % of every transfer, as fee-on-transfer tokens do: what arrives is
/// less than what was sent. Anyone may mint.
contract FeeToken is ERC20 {
    /// @notice The part of each transfer that is burnt, in basis points.
    uint256 public constant FEE_BASIS_POINTS = 100;

    constructor() ERC20("daisee fee token", "FEE") {}

    /// @notice 6, as most euro stablecoins.
    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @notice Mints `amount` to `to` (test token).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function _update(address from, address to, uint256 value) internal override {
        if (from == address(0) || to == address(0)) return super._update(from, to, value);
        uint256 fee = value * FEE_BASIS_POINTS / 10_000;
        super._update(from, address(0), fee);
        super._update(from, to, value - fee);
    }
}
