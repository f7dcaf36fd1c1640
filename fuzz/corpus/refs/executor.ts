import { createExecutor } from "@tailor-platform/sdk";

// A webhook with one header from the secret manager.
export default createExecutor({
  name: "notify-external",
  trigger: { kind: "recordCreated", typeName: "Order" },
  operation: {
    kind: "webhook",
    url: () => "https://example.com/hooks/order",
    headers: {
      "Content-Type": "application/json",
      Authorization: { vault: "api-keys", key: "external-api-token" },
    },
    body: ({ newRecord }) => ({ id: newRecord.id }),
  },
});
