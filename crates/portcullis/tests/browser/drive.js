// Opens the page given as the first argument in headless Chromium
// (Debian's, at $CHROMIUM or /usr/bin/chromium), waits for the page's
// `window.result` and prints it as JSON.
const { chromium } = require('playwright-core');

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox'],
  });
  try {
    const page = await browser.newPage();
    page.on('console', (m) => console.error('page:', m.text()));
    await page.goto(process.argv[2]);
    await page.waitForFunction(() => window.result !== undefined, null, { timeout: 30000 });
    console.log(JSON.stringify(await page.evaluate(() => window.result)));
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
