// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

/// @title Allocation
/// @notice The allocation keys of a collective self-consumption loop, in integer Wh.
/// @dev Consumers and producers are visited in registration order. The pro-rata shares use cumulative
/// rounding: the i-th share is floor(S_i·E/T) − floor(S_{i−1}·E/T) for running sums S, so the shares add
/// up to exactly E and none exceeds its member's own energy. Nothing is ever rounded up.
/// Products are plain: with the loop's bounds ({LoopStorage}) every one stays below 2^170, far from 2^256.
library Allocation {
    /// @notice Basis points of a static share.
    uint256 internal constant SHARE_DENOMINATOR = 10_000;

    /// @notice Pro-rata part of `pool` for a member with `amount` out of `total`, given the running sum
    /// `cumulative` of the amounts of the members visited before it.
    function cumulativeShare(uint256 cumulative, uint256 amount, uint256 pool, uint256 total)
        internal
        pure
        returns (uint256)
    {
        if (total == 0) return 0;
        return (cumulative + amount) * pool / total - cumulative * pool / total;
    }

    /// @notice Static key: a fixed share (basis points) of production, at most the consumption.
    function staticShare(uint256 consumed, uint256 share, uint256 produced) internal pure returns (uint256) {
        return Math.min(consumed, share * produced / SHARE_DENOMINATOR);
    }

    /// @notice Weighted key: production shared in proportion to weight × consumption, at most the consumption.
    /// @param weightedTotal Σ weight × consumption over the interval's members
    function weightedShare(uint256 consumed, uint256 weight, uint256 produced, uint256 weightedTotal)
        internal
        pure
        returns (uint256)
    {
        if (weightedTotal == 0) return 0;
        return Math.min(consumed, produced * (weight * consumed) / weightedTotal);
    }
}
