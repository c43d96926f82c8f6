// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title EuroToken
/// @notice A test euro with 6 decimals for development chains: anyone may mint. Never deploy it on a
/// network where it could be mistaken for money; use a real euro token (EURC, EURe…) there.
contract EuroToken is ERC20 {
    constructor() ERC20("daisee test euro", "tEUR") {}

    /// @notice 6, as most euro stablecoins.
    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @notice Mints `amount` to `to`: a faucet for tests and demos.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
