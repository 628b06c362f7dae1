package guardian.verifier;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * {@code java -jar verifier.jar --vectors FILE} checks every test vector (canonical bytes,
 * accept or reject); {@code java -jar verifier.jar < commands.jsonl} verifies one command per
 * line with GUARDIAN_SIGNING_KEY. Exit 0 when all is as expected, 1 otherwise, 2 on a usage error.
 */
public final class Main {
    private static final ObjectMapper JSON = new ObjectMapper();

    private Main() {}

    public static void main(String[] args) throws Exception {
        System.exit(args.length == 2 && args[0].equals("--vectors") ? checkVectors(Path.of(args[1])) : checkStdin());
    }

    private static int checkVectors(Path path) throws Exception {
        int failed = 0;
        for (JsonNode vector : JSON.readTree(Files.readString(path)).get("vectors")) {
            JsonNode command = vector.get("command");
            String got = new String(Verify.canonical((ObjectNode) command), StandardCharsets.UTF_8);
            boolean accepted = Verify.verify(command, vector.get("key").asText().getBytes(StandardCharsets.UTF_8));
            String want = vector.get("canonical").asText();
            String problem = null;
            if (!got.equals(want)) {
                problem = "canonical form differs\n  got  " + got + "\n  want " + want;
            } else if (accepted != vector.get("expect").asText().equals("accept")) {
                problem = "expected " + vector.get("expect").asText() + ", got accepted=" + accepted;
            }
            System.out.println(problem == null ? "ok   " + vector.get("name").asText() : "FAIL " + vector.get("name").asText() + ": " + problem);
            if (problem != null) {
                failed++;
            }
        }
        return failed > 0 ? 1 : 0;
    }

    private static int checkStdin() throws Exception {
        String key = System.getenv("GUARDIAN_SIGNING_KEY");
        if (key == null || key.isEmpty()) {
            System.err.println("GUARDIAN_SIGNING_KEY is not set");
            return 2;
        }
        int bad = 0;
        int number = 0;
        BufferedReader lines = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line = lines.readLine(); line != null; line = lines.readLine()) {
            number++;
            if (line.isBlank()) {
                continue;
            }
            String name = "line " + number;
            boolean ok;
            try {
                JsonNode command = JSON.readTree(line);
                name = command.path("command_id").asText(name);
                ok = Verify.verify(command, key.getBytes(StandardCharsets.UTF_8));
            } catch (Exception e) {
                ok = false;
            }
            System.out.println((ok ? "ok  " : "BAD ") + name);
            if (!ok) {
                bad++;
            }
        }
        return bad > 0 ? 1 : 0;
    }
}
