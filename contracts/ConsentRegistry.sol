// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {IEnergyLoop} from "./interfaces/IEnergyLoop.sol";

/// @title ConsentRegistry
/// @notice Who may see a meter's curves, for what, until when: each consent is an EIP-712 message signed by
/// the meter's payout account in its loop, recorded here by anyone (the member pays no gas), so that nobody,
/// the régie included, can claim a consent that was not given or hide one that was withdrawn. A consent
/// covers one meter, one grantee (an account, the loop's members, or everyone) and one purpose. Its id is
/// the EIP-712 digest of its message: a message counts once, on one chain and one registry only. Nothing
/// personal is recorded: meter ids, addresses, codes and times.
/// @dev No owner and no admin power: the loop and the longest consent are fixed at deployment. Signatures
/// are checked as OpenZeppelin's `SignatureChecker.isValidSignatureNow` checks them (ECDSA for an account
/// without code, ERC-1271 for a smart wallet); its 5.4 source imports `Bytes`, whose `mcopy` needs cancun,
/// hence {_isValidSignature}. A consent takes two storage slots; its other fields live in {ConsentGranted}.
contract ConsentRegistry is EIP712 {
    /// @notice Who a consent is granted to (the Python model's `Audience`).
    enum Audience {
        Account,
        Members,
        Everyone
    }

    /// @notice A consent's state at a given time ({status}); `None`: no consent under this id.
    enum Status {
        None,
        Pending,
        Active,
        Revoked,
        Expired
    }

    /// @notice The message a meter's payout account signs to grant a consent.
    /// @param audience an {Audience}; `grantee` is its account for `Account`, the zero address otherwise
    /// @param purpose what the data may be used for, 0 to 5 (loop dashboard, neighbour comparison, open data,
    /// research, advice, supplier)
    /// @param kinds the data kinds covered, bit flags: 1 consumption, 2 production, 4 allocation, 8 bill
    /// @param granularity the finest granularity served: 0 the loop's interval, 1 hour, 2 day, 3 month
    /// @param historyDays how many days before `validFrom` the grantee may see
    /// @param validFrom,validUntil when the consent starts and ends (unix seconds, `validUntil` excluded)
    /// @param nonce tells apart two grants otherwise the same
    struct Grant {
        bytes32 meterId;
        uint8 audience;
        address grantee;
        uint8 purpose;
        uint8 kinds;
        uint8 granularity;
        uint16 historyDays;
        uint64 validFrom;
        uint64 validUntil;
        uint256 nonce;
    }

    /// @notice A recorded consent, as {consent} returns it (zeros: none).
    /// @param grantor the meter's payout account that granted it, the only one that may revoke it
    struct Consent {
        bytes32 meterId;
        address grantor;
        uint40 validFrom;
        uint40 validUntil;
        bool revoked;
    }

    /// @notice EIP-712 type of a grant.
    bytes32 public constant GRANT_TYPEHASH = keccak256(
        "Grant(bytes32 meterId,uint8 audience,address grantee,uint8 purpose,uint8 kinds,uint8 granularity,"
        "uint16 historyDays,uint64 validFrom,uint64 validUntil,uint256 nonce)"
    );
    /// @notice EIP-712 type of a revocation.
    bytes32 public constant REVOCATION_TYPEHASH = keccak256("Revocation(bytes32 consentId)");
    /// @notice How many purposes there are; a purpose code is below it.
    uint8 public constant PURPOSES = 6;
    /// @notice Every data kind's flag.
    uint8 public constant ALL_KINDS = 0x0f;
    /// @notice How many granularities there are; a granularity code is below it.
    uint8 public constant GRANULARITIES = 4;

    /// @notice The loop whose meters' payout accounts grant consents.
    IEnergyLoop public immutable loop;
    /// @notice The longest a consent may last, from `validFrom` to `validUntil` (seconds).
    uint64 public immutable maxDurationSeconds;

    mapping(bytes32 consentId => Consent) private _consents;

    // ------------------------------------------------------------------ events

    /// @notice A consent was recorded; `consentId` is the EIP-712 digest of the grant whose fields follow.
    event ConsentGranted(
        bytes32 indexed consentId,
        bytes32 indexed meterId,
        address indexed grantee,
        address grantor,
        uint8 audience,
        uint8 purpose,
        uint8 kinds,
        uint8 granularity,
        uint16 historyDays,
        uint64 validFrom,
        uint64 validUntil,
        uint256 nonce
    );
    /// @notice The grantor withdrew consent `consentId`; `by` is the grantor (who sent or signed it).
    event ConsentRevoked(bytes32 indexed consentId, bytes32 indexed meterId, address indexed by);
    /// @notice `regie` says its access log had `entries` entries with running hash `head`. Anyone may emit
    /// it: readers trust the régie's known account, never the event alone.
    event AccessLogAnchored(address indexed regie, bytes32 head, uint64 entries);

    // ------------------------------------------------------------------ errors

    /// @notice The loop is not a contract.
    error InvalidLoop(address loop);
    /// @notice A registry without a longest consent would refuse every consent.
    error InvalidMaxDuration(uint256 maxDurationSeconds);
    /// @notice The loop has no meter under this id.
    error UnknownMeter(bytes32 meterId);
    /// @notice The message was not signed by `signer` (the meter's payout account, or the consent's grantor)
    /// for this chain and registry.
    error InvalidSignature(address signer);
    /// @notice Only the meter's payout account may grant a consent on it without a signature.
    error NotMeterPayout(bytes32 meterId, address caller);
    /// @notice This grant is recorded already (its id is its digest: a message counts once).
    error ConsentAlreadyRecorded(bytes32 consentId);
    /// @notice An audience code above `Everyone`.
    error InvalidAudience(uint8 audience);
    /// @notice `Account` needs a grantee; `Members` and `Everyone` name none (the zero address).
    error GranteeMismatch(uint8 audience, address grantee);
    /// @notice A purpose code of {PURPOSES} or more.
    error InvalidPurpose(uint8 purpose);
    /// @notice No data kind, or a flag beyond {ALL_KINDS}.
    error InvalidKinds(uint8 kinds);
    /// @notice A granularity code of {GRANULARITIES} or more.
    error InvalidGranularity(uint8 granularity);
    /// @notice The consent would be over before it starts or is recorded: `validUntil` must be after `notAfter`.
    error ConsentExpired(uint64 validUntil, uint256 notAfter);
    /// @notice The consent lasts longer than {maxDurationSeconds}.
    error ConsentTooLong(uint256 duration, uint256 maxDuration);
    /// @notice A time beyond what a consent records (2^40 − 1 s, the year 36812).
    error TimeOutOfRange(uint64 validUntil);
    /// @notice No consent is recorded under this id.
    error UnknownConsent(bytes32 consentId);
    /// @notice Only the consent's grantor may revoke it.
    error NotGrantor(bytes32 consentId, address caller);
    /// @notice The consent is revoked already.
    error ConsentAlreadyRevoked(bytes32 consentId);

    /// @param loop_ the loop whose meters' payout accounts grant consents
    /// @param maxDurationSeconds_ the longest consent, above 0 (three years: Enedis' longest third-party access)
    constructor(IEnergyLoop loop_, uint64 maxDurationSeconds_) EIP712("daisee ConsentRegistry", "1") {
        if (address(loop_).code.length == 0) revert InvalidLoop(address(loop_));
        if (maxDurationSeconds_ == 0) revert InvalidMaxDuration(maxDurationSeconds_);
        loop = loop_;
        maxDurationSeconds = maxDurationSeconds_;
    }

    // ================================================================== grants

    /// @notice Records `grant_`, signed by its meter's payout account; anyone may send it.
    /// @dev Reverts with {InvalidAudience}, {InvalidPurpose}, {InvalidKinds}, {InvalidGranularity},
    /// {GranteeMismatch}, {ConsentExpired}, {ConsentTooLong}, {TimeOutOfRange}, {ConsentAlreadyRecorded},
    /// {UnknownMeter} or {InvalidSignature} (a forged message, or one signed for another chain or registry,
    /// whose digest differs). Emits {ConsentGranted}.
    /// @return consentId the grant's EIP-712 digest
    function recordGrant(Grant calldata grant_, bytes calldata signature) external returns (bytes32 consentId) {
        consentId = _checkGrant(grant_);
        address payout = _payout(grant_.meterId);
        if (!_isValidSignature(payout, consentId, signature)) revert InvalidSignature(payout);
        _record(consentId, grant_, payout);
    }

    /// @notice Records `grant_` sent by its meter's payout account itself: no signature needed.
    /// @dev As {recordGrant}, with {NotMeterPayout} instead of {InvalidSignature}.
    /// @return consentId the grant's EIP-712 digest
    function grant(Grant calldata grant_) external returns (bytes32 consentId) {
        consentId = _checkGrant(grant_);
        address payout = _payout(grant_.meterId);
        if (msg.sender != payout) revert NotMeterPayout(grant_.meterId, msg.sender);
        _record(consentId, grant_, payout);
    }

    // ================================================================== revocations

    /// @notice Revokes consent `consentId` with a `Revocation(bytes32 consentId)` signed by its grantor; anyone
    /// may send it. A pending or expired consent may be revoked too.
    /// @dev Reverts with {UnknownConsent}, {ConsentAlreadyRevoked} or {InvalidSignature}. Emits {ConsentRevoked}.
    function recordRevocation(bytes32 consentId, bytes calldata signature) external {
        Consent storage c = _revocable(consentId);
        address grantor = c.grantor;
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(REVOCATION_TYPEHASH, consentId)));
        if (!_isValidSignature(grantor, digest, signature)) revert InvalidSignature(grantor);
        _revoke(c, consentId, grantor);
    }

    /// @notice Revokes consent `consentId`, sent by its grantor itself.
    /// @dev Reverts with {UnknownConsent}, {ConsentAlreadyRevoked} or {NotGrantor}. Emits {ConsentRevoked}.
    function revoke(bytes32 consentId) external {
        Consent storage c = _revocable(consentId);
        if (msg.sender != c.grantor) revert NotGrantor(consentId, msg.sender);
        _revoke(c, consentId, msg.sender);
    }

    // ================================================================== access log

    /// @notice Emits {AccessLogAnchored} with the caller as the régie: a public timestamp of its access log's
    /// running hash. Stores nothing; anyone may call it.
    function anchorAccessLog(bytes32 head, uint64 entries) external {
        emit AccessLogAnchored(msg.sender, head, entries);
    }

    // ================================================================== views

    /// @notice The consent recorded under `consentId` (all zeros if none).
    function consent(bytes32 consentId) external view returns (Consent memory) {
        return _consents[consentId];
    }

    /// @notice The state of consent `consentId` at the current block: pending before `validFrom`, active until
    /// `validUntil`, expired from then on, revoked once revoked.
    function status(bytes32 consentId) external view returns (Status) {
        Consent memory c = _consents[consentId];
        if (c.grantor == address(0)) return Status.None;
        if (c.revoked) return Status.Revoked;
        if (block.timestamp >= c.validUntil) return Status.Expired;
        return block.timestamp < c.validFrom ? Status.Pending : Status.Active;
    }

    /// @notice The EIP-712 domain separator grants and revocations are signed for.
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @notice The id `grant_` has (or would have) here: its EIP-712 digest.
    function consentIdOf(Grant calldata grant_) external view returns (bytes32) {
        return _hashTypedDataV4(_structHash(grant_));
    }

    // ================================================================== internals

    /// @dev Refuses a grant whose codes, grantee or times are out of bounds, or one recorded already; returns
    /// its id. Cheap checks first: a refused message costs little.
    function _checkGrant(Grant calldata g) private view returns (bytes32 consentId) {
        if (g.audience > uint8(Audience.Everyone)) revert InvalidAudience(g.audience);
        if (g.purpose >= PURPOSES) revert InvalidPurpose(g.purpose);
        if (g.kinds == 0 || g.kinds & ~ALL_KINDS != 0) revert InvalidKinds(g.kinds);
        if (g.granularity >= GRANULARITIES) revert InvalidGranularity(g.granularity);
        if ((g.audience == uint8(Audience.Account)) == (g.grantee == address(0))) {
            revert GranteeMismatch(g.audience, g.grantee);
        }
        uint256 notAfter = g.validFrom > block.timestamp ? g.validFrom : block.timestamp;
        if (g.validUntil <= notAfter) revert ConsentExpired(g.validUntil, notAfter);
        // cannot underflow: validUntil > validFrom
        unchecked {
            uint256 duration = g.validUntil - g.validFrom;
            if (duration > maxDurationSeconds) revert ConsentTooLong(duration, maxDurationSeconds);
        }
        if (g.validUntil > type(uint40).max) revert TimeOutOfRange(g.validUntil);
        consentId = _hashTypedDataV4(_structHash(g));
        if (_consents[consentId].grantor != address(0)) revert ConsentAlreadyRecorded(consentId);
    }

    /// @dev The EIP-712 struct hash of `g`.
    function _structHash(Grant calldata g) private pure returns (bytes32) {
        return keccak256(
            abi.encode(
                GRANT_TYPEHASH,
                g.meterId,
                g.audience,
                g.grantee,
                g.purpose,
                g.kinds,
                g.granularity,
                g.historyDays,
                g.validFrom,
                g.validUntil,
                g.nonce
            )
        );
    }

    /// @dev The payout account of meter `meterId` in the loop; {UnknownMeter} if it has none. A removed
    /// meter's history stays in the loop, and so does its member's say over it.
    function _payout(bytes32 meterId) private view returns (address) {
        try loop.meter(meterId) returns (IEnergyLoop.Meter memory m) {
            return m.payout;
        } catch {
            revert UnknownMeter(meterId);
        }
    }

    /// @dev Stores consent `consentId` and emits {ConsentGranted}.
    function _record(bytes32 consentId, Grant calldata g, address grantor) private {
        // validFrom < validUntil ≤ 2^40 − 1 ({_checkGrant})
        _consents[consentId] = Consent(g.meterId, grantor, uint40(g.validFrom), uint40(g.validUntil), false);
        emit ConsentGranted(
            consentId,
            g.meterId,
            g.grantee,
            grantor,
            g.audience,
            g.purpose,
            g.kinds,
            g.granularity,
            g.historyDays,
            g.validFrom,
            g.validUntil,
            g.nonce
        );
    }

    /// @dev The recorded, unrevoked consent `consentId`; {UnknownConsent} or {ConsentAlreadyRevoked} otherwise.
    function _revocable(bytes32 consentId) private view returns (Consent storage c) {
        c = _consents[consentId];
        if (c.grantor == address(0)) revert UnknownConsent(consentId);
        if (c.revoked) revert ConsentAlreadyRevoked(consentId);
    }

    /// @dev Marks `c` revoked and emits {ConsentRevoked}.
    function _revoke(Consent storage c, bytes32 consentId, address by) private {
        c.revoked = true;
        emit ConsentRevoked(consentId, c.meterId, by);
    }

    /// @dev True if `signature` is `signer`'s over `digest`: by ECDSA for an account without code (a malleable
    /// or malformed signature is refused), by ERC-1271 for a contract.
    function _isValidSignature(address signer, bytes32 digest, bytes calldata signature) private view returns (bool) {
        if (signer.code.length == 0) {
            (address recovered, ECDSA.RecoverError error,) = ECDSA.tryRecover(digest, signature);
            return error == ECDSA.RecoverError.NoError && recovered == signer;
        }
        (bool success, bytes memory result) =
            signer.staticcall(abi.encodeCall(IERC1271.isValidSignature, (digest, signature)));
        return success && result.length >= 32 && abi.decode(result, (bytes32)) == bytes32(IERC1271.isValidSignature.selector);
    }
}
