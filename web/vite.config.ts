import { defineConfig } from "vite";

// `npm run dev` serves the client with hot reload and forwards the API to a bedrud daemon
// (BEDRUD_API, default http://127.0.0.1:8090). The production build is served by bedrud itself.
const api = process.env.BEDRUD_API ?? "http://127.0.0.1:8090";

export default defineConfig({
  server: {
    proxy: { "/api": { target: api, changeOrigin: false } },
  },
  preview: {
    proxy: { "/api": { target: api, changeOrigin: false } },
  },
  build: {
    target: "es2022",
    // Everything is a file: the CSP allows no inline scripts or styles.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    chunkSizeWarningLimit: 800,
  },
});
