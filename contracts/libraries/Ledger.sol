// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IEnergyLoop} from "../interfaces/IEnergyLoop.sol";

/// @title Ledger
/// @notice The loop's money, always solvent: what members may withdraw is at most what the loop holds,
/// and no member's deposit pays another member's debt. A consumer pays for its local energy from its
/// balance; what the balance does not cover becomes its debt. Producers share what the consumers
/// actually paid; the rest becomes their receivable, paid, oldest first, as debts are repaid.
/// @dev Invariants, at every block: Σ balance + recovered + (collected but not yet paid out by the
/// settlement under way) = held ≤ the tokens the loop holds; Σ receivable = Σ debt + recovered. A member
/// never has both a balance and a debt: whatever it receives repays its debt first. The members' calls
/// are external (delegate-called by {EnergyLoop}); settlement uses the internal ones.
library Ledger {
    using SafeERC20 for IERC20;

    /// @dev A receivable waiting for repaid debts: who is owed, and how much. One slot.
    struct Claim {
        address holder;
        uint96 amount;
    }

    /// @dev A member's balance and debt, one slot.
    struct Money {
        uint128 balance;
        uint128 debt;
    }

    /// @dev Tokens deposited and not withdrawn, repaid debts not yet paid out, and the claims [head, tail).
    struct Books {
        uint128 held;
        uint128 recovered;
        uint64 head;
        uint64 tail;
    }

    struct Layout {
        mapping(address account => Money) money;
        mapping(address account => uint256) receivables;
        mapping(uint256 position => Claim) claims;
        Books books;
    }

    /// @dev Takes `amount` of `token` from the caller and credits `account` with what arrived (a token that
    /// takes a fee credits less): its debt first, then its balance.
    function deposit(Layout storage l, IERC20 token, address account, uint256 amount) external {
        if (amount == 0) revert IEnergyLoop.ZeroAmount();
        if (address(token) == address(0)) revert IEnergyLoop.NoSettlementToken();
        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(msg.sender, address(this), amount);
        uint256 received = token.balanceOf(address(this)) - before;
        if (received == 0) revert IEnergyLoop.ZeroAmount();
        l.books.held = SafeCast.toUint128(l.books.held + received);
        emit IEnergyLoop.Deposited(account, msg.sender, received);
        _credit(l, account, received);
    }

    /// @dev Sends `amount` of the caller's balance to it; the balance is debited before the transfer.
    function withdraw(Layout storage l, IERC20 token, uint256 amount) external {
        if (amount == 0) revert IEnergyLoop.ZeroAmount();
        if (address(token) == address(0)) revert IEnergyLoop.NoSettlementToken();
        Money storage money = l.money[msg.sender];
        if (money.balance < amount) revert IEnergyLoop.InsufficientBalance(msg.sender, money.balance, amount);
        // both fit: amount ≤ balance ≤ held
        money.balance -= uint128(amount);
        l.books.held -= uint128(amount);
        emit IEnergyLoop.Withdrawn(msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }

    /// @dev Settles up to `maxClaims` receivables, oldest first: a holder's own debt is netted against
    /// its claim, the rest is paid from repaid debts. Returns the amount settled.
    function payReceivables(Layout storage l, uint256 maxClaims) external returns (uint256 settled) {
        for (uint256 n; n < maxClaims; ++n) {
            Books memory books = l.books;
            if (books.head == books.tail) break;
            Claim memory claim = l.claims[books.head];
            Money storage money = l.money[claim.holder];
            uint256 netted = claim.amount < money.debt ? claim.amount : money.debt;
            uint256 rest = claim.amount - netted;
            uint256 paid = rest < books.recovered ? rest : books.recovered;
            if (netted + paid == 0) break;
            // all fit: netted ≤ debt, paid ≤ recovered, netted + paid ≤ claim.amount
            if (netted != 0) {
                money.debt -= uint128(netted);
                emit IEnergyLoop.DebtRepaid(claim.holder, netted);
            }
            l.books.recovered = books.recovered - uint128(paid);
            if (netted + paid == claim.amount) {
                delete l.claims[books.head];
                l.books.head = books.head + 1;
            } else {
                l.claims[books.head].amount = claim.amount - uint96(netted + paid);
            }
            l.receivables[claim.holder] -= netted + paid;
            settled += netted + paid;
            emit IEnergyLoop.ReceivablePaid(claim.holder, netted + paid);
            if (paid != 0) _credit(l, claim.holder, paid);
        }
    }

    /// @dev How much of the oldest claim {payReceivables} would settle now.
    function due(Layout storage l) internal view returns (uint256) {
        Books memory books = l.books;
        if (books.head == books.tail) return 0;
        Claim memory claim = l.claims[books.head];
        uint256 debt = l.money[claim.holder].debt;
        uint256 netted = claim.amount < debt ? claim.amount : debt;
        uint256 rest = claim.amount - netted;
        return netted + (rest < books.recovered ? rest : books.recovered);
    }

    /// @dev Charges `cost` to `account`: from its balance as far as it goes, the rest as debt.
    /// @return paid what its balance covered
    function charge(Layout storage l, address account, uint256 cost) internal returns (uint256 paid) {
        Money memory money = l.money[account];
        paid = cost < money.balance ? cost : money.balance;
        // fit: paid ≤ balance; a century of a member's costs stays below 2^128 (see LoopStorage)
        money.balance -= uint128(paid);
        money.debt += uint128(cost - paid);
        l.money[account] = money;
    }

    /// @dev Pays a producer `paid` of its `revenue`; the rest is its receivable, queued for repaid debts
    /// when the loop has a settlement token (in a credits-only ledger nothing is ever repaid).
    function earn(Layout storage l, address account, uint256 revenue, uint256 paid, bool queued) internal {
        if (paid != 0) _credit(l, account, paid);
        uint256 owed = revenue - paid;
        if (owed == 0) return;
        l.receivables[account] += owed;
        if (!queued) return;
        Books memory books = l.books;
        if (books.tail != books.head) {
            Claim storage last = l.claims[books.tail - 1];
            if (last.holder == account && uint256(last.amount) + owed <= type(uint96).max) {
                last.amount += uint96(owed);
                return;
            }
        }
        // fits: one interval's revenue of one meter stays below 2^85 (see LoopStorage)
        l.claims[books.tail] = Claim(account, uint96(owed));
        l.books.tail = books.tail + 1;
    }

    /// @dev `account`'s balance, debt and receivable.
    function balanceOf(Layout storage l, address account) internal view returns (IEnergyLoop.AccountBalance memory) {
        Money memory money = l.money[account];
        return IEnergyLoop.AccountBalance(money.balance, money.debt, l.receivables[account]);
    }

    /// @dev Gives `amount` to `account`: its debt first (that money goes to the receivables), then its balance.
    function _credit(Layout storage l, address account, uint256 amount) private {
        Money memory money = l.money[account];
        uint256 repaid = amount < money.debt ? amount : money.debt;
        if (repaid != 0) {
            // fits: repaid ≤ debt, and recovered ≤ held
            money.debt -= uint128(repaid);
            l.books.recovered += uint128(repaid);
            emit IEnergyLoop.DebtRepaid(account, repaid);
        }
        // fits: a balance never exceeds held
        money.balance += uint128(amount - repaid);
        l.money[account] = money;
    }
}
