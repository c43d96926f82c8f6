// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {IEnergyLoop} from "../interfaces/IEnergyLoop.sol";

/// @title ReentrantToken
/// @notice An attacker's settlement token for tests: each transfer out of the loop calls back into
/// {IEnergyLoop.withdraw}, trying to withdraw twice against one balance.
contract ReentrantToken is ERC20 {
    IEnergyLoop public loop;

    constructor() ERC20("reentrant", "RE") {}

    /// @notice Arms the attack against `target`.
    function arm(IEnergyLoop target) external {
        loop = target;
    }

    /// @notice Mints freely (test token).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Deposits into the loop on this contract's own account.
    function depositInto(uint256 amount) external {
        _approve(address(this), address(loop), amount);
        loop.deposit(amount);
    }

    /// @notice Starts a withdrawal that re-enters on transfer.
    function attack(uint256 amount) external {
        loop.withdraw(amount);
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        if (from == address(loop) && address(loop) != address(0)) loop.withdraw(value);
    }
}
