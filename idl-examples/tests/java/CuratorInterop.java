// A plain Java client of Apache Curator's service discovery, for the interop
// test idl-examples/tests/curator_interop.rs. It is compiled at test time
// with `javac -cp <Debian's Curator jars>` (scripts/ensure-curator installs
// them); no build tool, no network.
//
//   list [--serializer MODE] CONNECT BASE SERVICE [COUNT [TIMEOUT_MS]]
//       Queries SERVICE's instances (polling until there are at least COUNT,
//       or TIMEOUT_MS passed) and prints one line per instance, tab-separated:
//       ADDRESS:PORT  ID  enabled=BOOL  PAYLOAD_JSON  RAW_NODE_DATA
//
//   register [--serializer MODE] CONNECT BASE SERVICE ADDRESS PORT
//       Registers a ServiceInstance<Map<String,String>> with a plain map
//       payload ({"registeredBy":"curator"}), prints `node RAW_NODE_DATA`
//       and `registered ID`, and stays registered until stdin closes (then
//       unregisters and exits 0) or it is killed.
//
// MODE picks the ServiceDiscovery's serializer:
//   json      new JsonInstanceSerializer<>(Map.class) (the default here)
//   builder   none given: ServiceDiscoveryBuilder's own default
//   enabled   new JsonInstanceSerializer<>(Map.class, false): the
//             non-"compatible" mode, which also writes `"enabled":true`
// (In Curator 5.4.0 the first two are the "compatible" mode, which does not
// write `enabled`.) Reading is the same in every mode: unknown keys are
// ignored and a missing `enabled` means true.
//
// Exit status: 0 on success, 1 on an error (with a message on stderr),
// 2 on bad usage.

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.RetryNTimes;
import org.apache.curator.utils.ZKPaths;
import org.apache.curator.x.discovery.ServiceDiscovery;
import org.apache.curator.x.discovery.ServiceDiscoveryBuilder;
import org.apache.curator.x.discovery.ServiceInstance;
import org.apache.curator.x.discovery.details.JsonInstanceSerializer;

@SuppressWarnings({"rawtypes", "unchecked"})
public final class CuratorInterop {
    private CuratorInterop() {}

    public static void main(String[] args) throws Exception {
        List<String> rest = new ArrayList<>(List.of(args));
        if (rest.isEmpty()) {
            usage();
        }
        String command = rest.remove(0);
        String mode = "json";
        int flag = rest.indexOf("--serializer");
        if (flag >= 0) {
            if (flag + 1 >= rest.size()) {
                usage();
            }
            mode = rest.remove(flag + 1);
            rest.remove(flag);
        }
        if (!List.of("json", "builder", "enabled").contains(mode)) {
            usage();
        }
        switch (command) {
            case "list":
                if (rest.size() < 3 || rest.size() > 5) {
                    usage();
                }
                int count = rest.size() > 3 ? Integer.parseInt(rest.get(3)) : 0;
                long timeoutMs = rest.size() > 4 ? Long.parseLong(rest.get(4)) : 0;
                list(rest.get(0), rest.get(1), rest.get(2), count, timeoutMs, mode);
                break;
            case "register":
                if (rest.size() != 5) {
                    usage();
                }
                register(rest.get(0), rest.get(1), rest.get(2), rest.get(3),
                        Integer.parseInt(rest.get(4)), mode);
                break;
            default:
                usage();
        }
        System.exit(0);
    }

    private static void usage() {
        System.err.println(
                "usage: CuratorInterop list [--serializer MODE] CONNECT BASE SERVICE [COUNT [TIMEOUT_MS]]");
        System.err.println(
                "       CuratorInterop register [--serializer MODE] CONNECT BASE SERVICE ADDRESS PORT");
        System.err.println("MODE: json (default), builder, enabled");
        System.exit(2);
    }

    private static CuratorFramework connect(String connect) throws Exception {
        CuratorFramework client = CuratorFrameworkFactory.builder()
                .connectString(connect)
                .sessionTimeoutMs(10_000)
                .connectionTimeoutMs(10_000)
                .retryPolicy(new RetryNTimes(50, 100))
                .build();
        client.start();
        if (!client.blockUntilConnected(15, TimeUnit.SECONDS)) {
            client.close();
            fail("cannot connect to ZooKeeper at " + connect + " within 15 s");
        }
        return client;
    }

    private static ServiceDiscovery<Map> discovery(
            CuratorFramework client, String base, String mode) throws Exception {
        ServiceDiscoveryBuilder<Map> builder = ServiceDiscoveryBuilder.builder(Map.class)
                .client(client)
                .basePath(base)
                .watchInstances(false);
        switch (mode) {
            case "json":
                builder.serializer(new JsonInstanceSerializer<>(Map.class));
                break;
            case "enabled":
                builder.serializer(new JsonInstanceSerializer<>(Map.class, false));
                break;
            default: // "builder": the builder's own default
                break;
        }
        ServiceDiscovery<Map> discovery = builder.build();
        discovery.start();
        return discovery;
    }

    private static void list(String connect, String base, String service, int count,
            long timeoutMs, String mode) throws Exception {
        ObjectMapper json = new ObjectMapper();
        try (CuratorFramework client = connect(connect);
                ServiceDiscovery<Map> discovery = discovery(client, base, mode)) {
            long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
            Collection<ServiceInstance<Map>> instances = discovery.queryForInstances(service);
            while (instances.size() < count && System.nanoTime() < deadline) {
                Thread.sleep(50);
                instances = discovery.queryForInstances(service);
            }
            StringBuilder out = new StringBuilder();
            for (ServiceInstance<Map> instance : instances) {
                byte[] raw = client.getData()
                        .forPath(ZKPaths.makePath(base, service, instance.getId()));
                out.append(instance.getAddress()).append(':').append(instance.getPort())
                        .append('\t').append(instance.getId())
                        .append('\t').append("enabled=").append(instance.isEnabled())
                        .append('\t').append(json.writeValueAsString(instance.getPayload()))
                        .append('\t').append(new String(raw, StandardCharsets.UTF_8))
                        .append('\n');
            }
            System.out.print(out);
            System.out.flush();
        }
    }

    private static void register(String connect, String base, String service, String address,
            int port, String mode) throws Exception {
        Map<String, String> payload = new LinkedHashMap<>();
        payload.put("registeredBy", "curator");
        ServiceInstance<Map> instance = ServiceInstance.<Map>builder()
                .name(service)
                .address(address)
                .port(port)
                .payload(payload)
                .build();
        try (CuratorFramework client = connect(connect);
                ServiceDiscovery<Map> discovery = discovery(client, base, mode)) {
            discovery.registerService(instance);
            byte[] raw = client.getData()
                    .forPath(ZKPaths.makePath(base, service, instance.getId()));
            System.out.println("node " + new String(raw, StandardCharsets.UTF_8));
            System.out.println("registered " + instance.getId());
            System.out.flush();
            // Stay registered until stdin closes (the test drops its end) or
            // the process is killed.
            while (System.in.read() != -1) {
                // discard
            }
            discovery.unregisterService(instance);
        }
    }

    private static void fail(String message) {
        System.err.println("error: " + message);
        System.exit(1);
    }
}
