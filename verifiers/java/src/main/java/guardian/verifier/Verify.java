package guardian.verifier;

// Maven: io.github.erdtman:java-json-canonicalization, com.fasterxml.jackson.core:jackson-databind
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.HexFormat;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import org.erdtman.jcs.JsonCanonicalizer;

/** Verifies Rollback Guardian commands: HMAC-SHA256 over their RFC 8785 form. */
public final class Verify {
    private static final String PREFIX = "hmac-sha256+jcs:";
    private static final ObjectMapper JSON = new ObjectMapper();

    private Verify() {}

    /** RFC 8785 bytes of the command without its signature: what the guardian signs. */
    public static byte[] canonical(ObjectNode command) throws Exception {
        ObjectNode unsigned = command.deepCopy();
        unsigned.remove("signature");
        return new JsonCanonicalizer(JSON.writeValueAsString(unsigned)).getEncodedUTF8();
    }

    /** True when the command carries a valid hmac-sha256+jcs signature for key. */
    public static boolean verify(JsonNode command, byte[] key) throws Exception {
        JsonNode signature = command.path("signature");
        if (!command.isObject() || !signature.isTextual() || !signature.asText().startsWith(PREFIX)) {
            return false;
        }
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(key, "HmacSHA256"));
        byte[] expected = HexFormat.of().formatHex(mac.doFinal(canonical((ObjectNode) command)))
                .getBytes(StandardCharsets.US_ASCII);
        byte[] given = signature.asText().substring(PREFIX.length()).getBytes(StandardCharsets.UTF_8);
        return MessageDigest.isEqual(expected, given);
    }
}
